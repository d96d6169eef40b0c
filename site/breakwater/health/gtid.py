"""GTID position arithmetic (MariaDB format ``domain-server-sequence[,...]``)."""

from __future__ import annotations


def parse_gtid_pos(pos: str | None) -> dict[int, int]:
    """``'0-1-42,1-3-7'`` -> ``{0: 42, 1: 7}`` (highest sequence per replication domain)."""
    result: dict[int, int] = {}
    for part in (pos or "").split(","):
        part = part.strip()
        if not part:
            continue
        domain, _server, seq = part.split("-")
        result[int(domain)] = max(result.get(int(domain), 0), int(seq))
    return result


def transactions_behind(primary_pos: str | None, replica_pos: str | None) -> int:
    """How many transactions the replica still has to apply, summed over domains."""
    primary, replica = parse_gtid_pos(primary_pos), parse_gtid_pos(replica_pos)
    return sum(max(0, seq - replica.get(domain, 0)) for domain, seq in primary.items())
