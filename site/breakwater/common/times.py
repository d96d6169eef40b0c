"""Times as the database stores them: naive UTC, whole seconds."""

from __future__ import annotations

from datetime import UTC, datetime

from breakwater.common.errors import ApiError


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def epoch_ms(value: datetime) -> int:
    """A stored (naive UTC) time as milliseconds since the epoch."""
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def iso(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a ``Z``, or None."""
    return value.isoformat(timespec="seconds") + "Z" if value else None


def parse_datetime(data: dict, field: str) -> datetime | None:
    """``data[field]`` as naive UTC (None when absent or empty); 400 ``invalid_datetime`` otherwise."""
    value = data.get(field)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_datetime", f"{field} must be an ISO 8601 date-time string.", field=field)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:  # stored as naive UTC
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        parsed = None
    if parsed is None or not 1000 <= parsed.year <= 9999:  # the DATETIME column's range
        raise ApiError(
            400,
            "invalid_datetime",
            f"{field} must be an ISO 8601 date-time (years 1000-9999), e.g. 2026-12-01T08:00:00Z.",
        )
    return parsed.replace(microsecond=0)
