"""Causal tokens: the GTID positions a client has written, so its reads can wait for them.

A token is a MariaDB GTID list, ``domain-server-sequence[,...]``, holding the highest sequence
per replication domain. After a commit on the primary the router reads ``@@last_gtid`` and
merges it into the request's token; the token travels in the session cookie (browsers) and in
the ``X-Causal-Token`` header (API clients). Replicas whose ``@@gtid_slave_pos`` covers the token
can serve the client's reads; others must first ``MASTER_GTID_WAIT`` for it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from breakwater.common.gtid import InvalidGtid, parse_positions

MAX_TOKEN_LENGTH = 512


class InvalidToken(ValueError):
    pass


def parse(token: str | None) -> dict[int, tuple[int, int]]:
    """``'0-1-42'`` -> ``{0: (1, 42)}``; raises InvalidToken on malformed input."""
    if token and len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("causal token too long")
    try:
        return parse_positions(token)
    except InvalidGtid as exc:
        raise InvalidToken(str(exc)) from None


def format_token(positions: dict[int, tuple[int, int]]) -> str:
    return ",".join(f"{d}-{s}-{q}" for d, (s, q) in sorted(positions.items()))


def merge(*tokens: str | None) -> str:
    """Highest sequence per domain over all tokens (invalid input is ignored here)."""
    merged: dict[int, tuple[int, int]] = {}
    for token in tokens:
        try:
            positions = parse(token)
        except InvalidToken:
            continue
        for domain, (server, seq) in positions.items():
            if domain not in merged or merged[domain][1] < seq:
                merged[domain] = (server, seq)
    return format_token(merged)


def covers(position: str | dict | None, token: str | dict | None) -> bool:
    """True when a replica at ``position`` has applied everything in ``token``."""
    pos = parse(position) if isinstance(position, str) or position is None else position
    tok = parse(token) if isinstance(token, str) or token is None else token
    return all(domain in pos and pos[domain][1] >= seq for domain, (_s, seq) in tok.items())


@dataclass
class Causality:
    """Per-request (or per-task) consistency state, shared by the router and the web layer."""

    token: str = ""
    mode: str = "eventual"  # eventual | causal | bounded | strong
    max_lag: float | None = None
    routes: list[str] = field(default_factory=list)
    verified: set[str] = field(default_factory=set)  # replicas known to cover the token
    track_commit: bool = False
    #: the highest cache-bump sequence of this client's publishes (see breakwater.cache.local)
    cache_seq: int = 0

    def add_commit(self, gtid: str) -> None:
        if gtid:
            self.token = merge(self.token, gtid)
            self.verified.clear()  # replicas verified for the older token may not have this write


current: ContextVar[Causality | None] = ContextVar("breakwater_causality", default=None)


def state() -> Causality:
    """The active Causality; outside a request or task, a throwaway one that is not kept
    (storing it would leak into whatever request this thread serves next)."""
    value = current.get()
    return value if value is not None else Causality()
