"""REDIS_SENTINEL=1 on one machine and in a cluster: where the replica and the three Sentinels run, what their
configuration says, and how every client is pointed at them (tests/cluster/ kills the primary for real)."""

from __future__ import annotations

import pytest

from breakwater.redis_clients import celery_backend, parse
from breakwater.settings import Settings
from breakwater_tools.stack import Stack
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.render import render_all
from breakwater_tools.stack.supervised import programs
from conftest import stack_env


def sentinel_env(tmp_path, **extra: str) -> dict[str, str]:
    env = stack_env(tmp_path)
    env["BREAKWATER_REDIS_SENTINEL"] = "1"
    env["BREAKWATER_REDIS_PASSWORD"] = "s3cret/pw"
    env["BREAKWATER_SENTINEL_PORTS"] = "26901,26902,26903"
    env["BREAKWATER_REDIS_REPLICA_PORT"] = "26904"
    env.update({f"BREAKWATER_{k}": v for k, v in extra.items()})
    return env


def test_on_one_machine_every_client_goes_through_the_three_sentinels(tmp_path):
    st = Stack(sentinel_env(tmp_path), echo=lambda _m: None)
    s = st.settings
    host = s["HOST"]
    sentinels, master, password = parse(s.redis_url)
    assert sentinels == [(host, 26901), (host, 26902), (host, 26903)] and master == "breakwater"
    assert password == "s3cret/pw"
    assert parse(s.redis_cache_url)[1] == "breakwater-cache"
    backend, options = celery_backend(s.redis_url, timeout=2.0)
    assert backend.count("sentinel://") == 3 and options["master_name"] == "breakwater"

    render_all(st.layout)
    names = {p.name: p for p in programs(st.layout)}
    assert {"redis-replica", "sentinel1", "sentinel2", "sentinel3"} <= names.keys()
    replica = (st.layout.redis_replica / "redis.conf").read_text()
    assert f"replicaof {host} {s.int('REDIS_PORT')}" in replica and "masterauth s3cret/pw" in replica
    conf = (st.layout.state / "sentinel2" / "sentinel.conf").read_text()
    assert f"port 26902\nbind {host}" in conf
    assert f"sentinel monitor breakwater {host} {s.int('REDIS_PORT')} 2" in conf
    assert f"sentinel monitor breakwater-cache {host} {s.int('REDIS_CACHE_PORT')} 2" in conf
    assert "requirepass s3cret/pw" in conf and "sentinel auth-pass breakwater s3cret/pw" in conf


def test_in_a_cluster_the_sentinels_sit_on_three_hosts_and_the_replica_on_an_app_host():
    layout = Layout(Settings.load({"BREAKWATER_CLUSTER_HOSTS": "4", "BREAKWATER_REDIS_SENTINEL": "1"}))
    hosts = [h for _n, _p, _d, h in layout.sentinels()]
    assert [h.name for h in hosts] == ["h1", "h2", "h3"]
    assert layout.redis_replica_host == layout.cluster.app_hosts[0]
    placed = {p.name: p.host.name for p in programs(layout) if p.name.startswith(("sentinel", "redis"))}
    assert placed == {"redis": "h1", "redis-cache": "h1", "redis-replica": "h2",
                      "sentinel1": "h1", "sentinel2": "h2", "sentinel3": "h3"}  # fmt: skip


def test_sentinel_ports_must_be_three():
    with pytest.raises(ValueError, match="must be three port numbers"):
        _ = Settings.load({"BREAKWATER_SENTINEL_PORTS": "26380,26381"}).sentinel_ports
