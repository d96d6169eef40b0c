"""REDIS_SENTINEL=1: the gate/broker Redis replica and the three Sentinels, their programs and configuration."""

from __future__ import annotations

from breakwater_tools.stack.files import templates, write_private
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.programs import which
from breakwater_tools.stack.supervisor import Program


def sentinel_programs(layout: Layout) -> list[Program]:
    """REDIS_SENTINEL=1: the gate/broker Redis replica and the three Sentinels."""
    if not layout.sentinel_enabled:
        return []
    s = layout.settings
    redis_server = which("redis-server")
    replica = layout.redis_replica_host
    progs = [
        Program(
            "redis-replica", "broker+gate replica", f"{redis_server} {layout.redis_replica / 'redis.conf'}",
            s.int("REDIS_REPLICA_PORT"), host=replica, address=replica.address if replica else "",
        )
    ]  # fmt: skip
    for name, port, directory, host in layout.sentinels():
        progs.append(
            Program(
                name, "redis sentinel", f"{redis_server} {directory / 'sentinel.conf'} --sentinel", port,
                priority=15, host=host, address=host.address if host else "",
            )
        )  # fmt: skip
    return progs


def render_sentinels(layout: Layout) -> None:
    """The replica's redis.conf (every start) and each Sentinel's config (only once: it rewrites it)."""
    if not layout.sentinel_enabled:
        return
    s = layout.settings
    primary = f"{s['HOST']} {s.int('REDIS_PORT')}"
    replica = layout.redis_replica_host
    write_private(
        layout.redis_replica / "redis.conf",
        templates.get_template("redis.conf.j2").render(
            port=s.int("REDIS_REPLICA_PORT"), host=replica.address if replica else s["HOST"],
            redis_dir=layout.redis_replica, password=s["REDIS_PASSWORD"], role="durable", replica_of=primary,
        ),
    )  # fmt: skip
    master = s["REDIS_SENTINEL_MASTER"]
    masters = [(master, primary), (f"{master}-cache", f"{s['HOST']} {s.int('REDIS_CACHE_PORT')}")]
    for _name, port, directory, host in layout.sentinels():
        conf = directory / "sentinel.conf"
        if conf.exists():
            continue
        write_private(
            conf,
            templates.get_template("sentinel.conf.j2").render(
                port=port, host=host.address if host else s["HOST"], dir=directory, password=s["REDIS_PASSWORD"],
                masters=masters,
            ),
        )  # fmt: skip
