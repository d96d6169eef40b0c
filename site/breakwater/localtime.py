"""The site's time zone (``BREAKWATER_TIMEZONE``, default Asia/Shanghai) for everything editors see.

The database keeps naive UTC. Editors type and read local wall-clock times: HTML forms send a
``datetime-local`` value (``2026-12-01T10:00``, no offset), which :func:`form_value` turns into an
ISO 8601 string with the zone's offset for that instant (daylight saving included) before the
services parse it into UTC. The JSON API keeps explicit ISO 8601 (an offset or ``Z``; none = UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from flask import Flask

from breakwater import extensions


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def site_zone() -> ZoneInfo:
    return _zone(extensions.settings()["TIMEZONE"])


def zone_name() -> str:
    return site_zone().key


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_local(value: datetime | str | None) -> datetime | None:
    """A stored naive-UTC time (or an ISO string) as an aware time in the site's zone."""
    utc = _as_utc(value)
    return utc.astimezone(site_zone()) if utc else None


def local_input(value: datetime | str | None) -> str:
    """The value of a ``<input type="datetime-local">``: local wall-clock time, to the minute."""
    local = to_local(value)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def local_time(value: datetime | str | None) -> str:
    """For reading: ``2026-12-01 10:00 CST``."""
    local = to_local(value)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}" if local else ""


def form_value(raw: str | None) -> str:
    """A form's local date-time as ISO 8601 with the site's offset; anything else unchanged (a value
    that already has an offset keeps it; garbage goes on to the services' 400)."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if parsed.tzinfo is not None:
        return raw
    return parsed.replace(tzinfo=site_zone()).isoformat()


def init_localtime(app: Flask) -> None:
    _zone(extensions.settings(app)["TIMEZONE"])  # an unknown zone fails at start, not later
    app.jinja_env.filters["local_input"] = local_input
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.globals["site_zone_name"] = zone_name
