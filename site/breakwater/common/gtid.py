"""GTID positions in MariaDB's format, ``domain-server-sequence[,...]``: the one parser, used by causal tokens
and by replication-lag arithmetic."""

from __future__ import annotations

import re

_GTID = re.compile(r"^\d{1,10}-\d{1,10}-\d{1,20}$")


class InvalidGtid(ValueError):
    pass


def parse_positions(pos: str | None) -> dict[int, tuple[int, int]]:
    """``'0-1-42,1-3-7'`` -> ``{0: (1, 42), 1: (3, 7)}``: (server, highest sequence) per replication domain.

    Raises InvalidGtid on a malformed part."""
    result: dict[int, tuple[int, int]] = {}
    for part in (pos or "").split(","):
        part = part.strip()
        if not part:
            continue
        if not _GTID.match(part):
            raise InvalidGtid(f"malformed GTID {part[:40]!r}")
        domain, server, seq = (int(x) for x in part.split("-"))
        if domain not in result or result[domain][1] < seq:
            result[domain] = (server, seq)
    return result


def transactions_behind(primary_pos: str | None, replica_pos: str | None) -> int:
    """How many transactions the replica still has to apply, summed over domains."""
    primary, replica = parse_positions(primary_pos), parse_positions(replica_pos)
    return sum(max(0, seq - replica.get(domain, (0, 0))[1]) for domain, (_server, seq) in primary.items())
