"""Issue 20, point 4 on the cluster (`make cluster` always starts as root): the checks of tests/test_service_users.py
against the cluster's stack (programs switched by ``setpriv`` after ``ip netns exec``, which needs root), and every
process in every host's namespace, daemons included (RabbitMQ's epmd), runs as the service user but the two masters
that start as root and drop privileges themselves."""

from __future__ import annotations

from test_service_users import (  # noqa: F401  collected here too: the same checks against the cluster's stack
    ROOT_STARTED,
    _expected_uid,
    _status,
    _uids,
    test_every_service_process_runs_unprivileged,
    test_state_holding_secrets_or_personal_data_is_not_world_readable,
    test_the_rendered_nginx_config_switches_its_workers_to_the_service_user,
)


def test_every_process_on_every_host_runs_as_the_service_user(stack, cluster):
    masters = {
        info["pid"] for name, info in stack.supervisor.processes().items() if name in ROOT_STARTED and info["pid"]
    }
    expected = _expected_uid()
    offenders, seen = [], 0
    for host in cluster.hosts:
        for pid in cluster.pids(host):
            st = _status(pid)
            if st is None or pid in masters:
                continue
            seen += 1
            if _uids(st) != {expected}:
                offenders.append(f"{host.name}: pid {pid} {st['Name']} uid {st['Uid']}")
    assert seen >= len(cluster.hosts), seen
    assert not offenders, "\n".join(offenders)
