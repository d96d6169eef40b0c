"""The operator's view of /healthz and /metrics from tests that run as visitors of their own.

The ``http`` fixture's connections leave from a 127/8 address of their own (tests/visitors.py), which is not the
operator's network (BREAKWATER_ORIGIN_OPERATOR_NETWORK, 127.0.0.1): such a test gets /healthz's details with the
operator token, and reads /metrics from 127.0.0.1 (plain ``requests``), as the operator's scraper does.
"""

from __future__ import annotations


def ops_headers(settings) -> dict[str, str]:
    """``Authorization: Bearer <BREAKWATER_OPS_TOKEN>``: /healthz's details from any address."""
    return {"Authorization": f"Bearer {settings['OPS_TOKEN']}"}
