"""A small client of Prometheus's HTTP API for the dashboard: range queries and the alerts, nothing else.

Every call has a short timeout and the calls of one request share a deadline (:data:`TIMEOUT`,
:data:`DEADLINE`), so a hung or dead Prometheus costs a dashboard request at most about two seconds and
never ties up a gunicorn worker; any failure to get an answer is :class:`PrometheusUnavailable`.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

#: seconds one call may take
TIMEOUT = 1.5
#: seconds all the calls of one request may take together
DEADLINE = 2.0
#: the most bytes read from one answer (a range query of a fixed panel is a few kB)
MAX_BYTES = 4 * 1024 * 1024


class PrometheusUnavailable(Exception):
    """Prometheus did not answer (refused, timed out, not JSON) or answered with an error."""


@dataclass
class Client:
    base_url: str
    timeout: float = TIMEOUT
    deadline: float = field(default_factory=lambda: time.monotonic() + DEADLINE)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict:
        left = self.deadline - time.monotonic()
        if left <= 0.05:
            raise PrometheusUnavailable(f"no answer from Prometheus at {self.base_url} within {DEADLINE:g} s")
        url = self.base_url.rstrip("/") + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=min(self.timeout, left)) as resp:
                body = json.loads(resp.read(MAX_BYTES))
        except urllib.error.HTTPError as exc:  # 400/422/503 carry Prometheus's own JSON error
            try:
                detail = json.loads(exc.read(65536)).get("error", "")
            except (ValueError, OSError):
                detail = ""
            raise PrometheusUnavailable(f"Prometheus at {self.base_url} answered {exc.code} {detail}".strip()) from exc
        except (OSError, ValueError) as exc:  # refused, reset, timed out (URLError and TimeoutError are OSErrors)
            reason = getattr(exc, "reason", exc)
            raise PrometheusUnavailable(f"no answer from Prometheus at {self.base_url}: {reason}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            raise PrometheusUnavailable(f"Prometheus at {self.base_url} answered: {str(body)[:200]}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """``[{"metric": {labels}, "values": [[unix seconds, "value"], ...]}, ...]``"""
        data = self._get("/api/v1/query_range", {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                                 "step": f"{step:g}"})  # fmt: skip
        return data.get("result", [])

    def alerts(self) -> list[dict]:
        """Every alert Prometheus's rules hold now, pending or firing."""
        return self._get("/api/v1/alerts").get("alerts", [])


def number(value: str) -> float | None:
    """A sample value as JSON can carry it: NaN and the infinities become None (a gap in the chart)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None
