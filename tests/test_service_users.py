"""Issue 20, point 4: started as root, every service runs as the unprivileged system user ``breakwater`` (which
`make deps` and the stack's start create), except the two masters that start as root and drop privileges
themselves (Nginx's master, which starts its workers as the user; varnishd's manager, which jails its child).
State holding secrets or personal data is not world-readable. Started as a normal user, nothing switches users.

The stack's processes are read from /proc: supervisord's programs and every process below them."""

from __future__ import annotations

import configparser
import os
import pwd
import re
import stat
from pathlib import Path

import pytest

SERVICE_USER = "breakwater"
#: programs started as root that drop privileges themselves: Nginx's master, varnishd's manager
ROOT_STARTED = {"nginx", "edge"}
AS_ROOT = os.geteuid() == 0


def _status(pid: int) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None  # gone meanwhile
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _status(int(entry.name))):
            children.setdefault(int(st["PPid"]), []).append(int(entry.name))
    return children


def _below(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def _uids(st: dict[str, str]) -> set[int]:
    """Real, effective, saved and file-system uid."""
    return {int(u) for u in st["Uid"].split()}


def _expected_uid() -> int | None:
    """The service user's uid (None while it does not exist), or as a normal user the invoker's."""
    if not AS_ROOT:
        return os.geteuid()
    try:
        return pwd.getpwnam(SERVICE_USER).pw_uid
    except KeyError:
        return None


def test_the_service_user_is_a_system_user_without_login_or_home(stack):
    if not AS_ROOT:
        pytest.skip("started as a normal user: the services run as that user")
    entry = pwd.getpwnam(SERVICE_USER)
    assert 0 < entry.pw_uid < 1000, entry
    assert entry.pw_shell in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"), entry
    assert not Path(entry.pw_dir).exists(), entry


def test_every_service_process_runs_unprivileged(stack):
    """Every process of every running program, and every process below it, runs as the service user with no
    root uid left (real, effective, saved, file system); only Nginx's master and varnishd's manager start as
    root, and their workers and children do not."""
    expected = _expected_uid()
    for name, info in stack.supervisor.processes().items():
        if info["statename"] == "STARTING":  # one an earlier test brought back (a fenced old primary)
            stack.supervisor.wait_running(name)
    children = _children()
    checked, offenders = {}, []
    for name, info in stack.supervisor.processes().items():
        if info["statename"] != "RUNNING" or not info["pid"]:
            continue
        top = info["pid"]
        below = _below(top, children)
        checked[name] = 1 + len(below)
        for pid in [top, *below]:
            st = _status(pid)
            if st is None:
                continue
            if AS_ROOT and pid == top and name in ROOT_STARTED:
                continue  # binds, then starts or jails its workers as the service user
            if 0 in _uids(st) or _uids(st) != {expected}:
                offenders.append(f"{name}: pid {pid} {st['Name']} uid {st['Uid']} gid {st['Gid']}")
    assert not offenders, "processes not running as the service user:\n" + "\n".join(offenders)
    assert {"mariadb-primary", "redis", "rabbitmq", "smtp", "app", "worker-pages", "nginx", "edge"} <= set(checked)
    assert checked["nginx"] >= 2 and checked["edge"] >= 2, checked  # the workers, the cache child were seen


def test_the_rendered_nginx_config_switches_its_workers_to_the_service_user(stack):
    text = (stack.layout.nginx / "nginx.conf").read_text()
    assert not re.search(r"^\s*user\s+root\b", text, re.M), "the origin's workers run as root"
    if AS_ROOT:
        assert re.search(rf"^user {SERVICE_USER}\b", text, re.M)


def _private(path: Path) -> str | None:
    """Why ``path`` is not private (world bits set, or as root: not the service user's), or None."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return None
    if st.st_mode & 0o007:
        return f"{path} is mode {stat.filemode(st.st_mode)}"
    return None


def test_state_holding_secrets_or_personal_data_is_not_world_readable(stack):
    layout = stack.layout
    secrets = [
        layout.state / "secrets.env",
        layout.rabbitmq / ".erlang.cookie",
        layout.rabbitmq / "rabbitmq.conf",
        layout.redis / "redis.conf",
        layout.redis_cache / "redis.conf",
    ]
    data_dirs = [
        *(n.dir for n in layout.nodes),
        layout.redis,
        layout.redis_cache,
        layout.rabbitmq,
        layout.mail,
        layout.settings.media_dir,
        layout.celery,
        layout.prometheus,
    ]
    problems = []
    for path in secrets:
        assert path.exists(), path
        problems.append(_private(path))
        if AS_ROOT and path.stat().st_uid != _expected_uid():
            problems.append(f"{path} belongs to uid {path.stat().st_uid}, not the service user")
    for d in data_dirs:
        assert d.is_dir(), d
        if AS_ROOT and d.stat().st_uid != _expected_uid():
            problems.append(f"{d} belongs to uid {d.stat().st_uid}, not the service user")
        problems += [_private(p) for p in [d, *d.rglob("*")]]
    # the logs (visitors' addresses, buyers' mail addresses): the folder and every service's log
    services = {*stack.supervisor.processes(), *(f"{n.name}-error" for n in layout.nodes), "supervisord"}
    problems.append(_private(layout.logs))
    problems += [_private(p) for p in layout.logs.glob("*.log") if p.stem in services | {"nginx-access"}]
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


def test_a_render_for_a_normal_user_switches_no_user_and_one_for_root_switches_every_service(tmp_path):
    """Rendered as for a normal user (no root): no supervisord ``user =``, no Nginx ``user``, Varnish without a
    jail, MariaDB as the invoker. Rendered as for root: every program but Nginx and the edge is switched by
    supervisord, Nginx's workers and Varnish's child by themselves; in a cluster through ``setpriv`` after
    ``ip netns exec`` (which needs root)."""
    from breakwater.settings import Settings
    from breakwater_tools.stack.layout import Layout
    from breakwater_tools.stack.ports import free_ports
    from breakwater_tools.stack.render import render_all
    from breakwater_tools.stack.supervised import programs
    from breakwater_tools.stack.users import RunAs

    ports = free_ports(2)
    env = {
        "BREAKWATER_STATE_DIR": str(tmp_path / "state"),
        "BREAKWATER_STATIC_DIR": str(tmp_path / "static"),
        "BREAKWATER_APP_PORT": str(ports[0]),
        "BREAKWATER_FLOWER": "1",
        "BREAKWATER_DB_FAILOVER_AFTER": "5",
    }
    layout = Layout(Settings.load(env))
    layout.run_as = RunAs("alice", switch=False)
    progs = render_all(layout)
    conf = layout.supervisor_conf.read_text()
    assert not re.search(r"^user\s*=", conf, re.M), conf
    assert "setpriv" not in conf
    assert not re.search(r"^\s*user\s", (layout.nginx / "nginx.conf").read_text(), re.M)
    assert "-j none" in next(p for p in progs if p.name == "edge").command
    assert re.search(r"^user\s*=\s*alice$", layout.primary.cnf.read_text(), re.M)

    layout = Layout(Settings.load({**env, "BREAKWATER_STATE_DIR": str(tmp_path / "root-state")}))
    layout.run_as = RunAs(SERVICE_USER, switch=True)
    progs = render_all(layout)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(layout.supervisor_conf)
    switched = {s.removeprefix("program:") for s in conf.sections() if conf[s].get("user") == SERVICE_USER}
    assert switched == {p.name for p in progs} - ROOT_STARTED, layout.supervisor_conf.read_text()
    assert re.search(rf"^user {SERVICE_USER} \S+;$", (layout.nginx / "nginx.conf").read_text(), re.M)
    edge = next(p for p in progs if p.name == "edge").command
    assert f"-j unix,user={SERVICE_USER},workuser={SERVICE_USER}" in edge and "-j none" not in edge
    assert re.search(rf"^user\s*=\s*{SERVICE_USER}$", layout.primary.cnf.read_text(), re.M)

    cluster = Layout(Settings.load({**env, "BREAKWATER_CLUSTER_HOSTS": "4"}))
    cluster.run_as = RunAs(SERVICE_USER, switch=True)
    for prog in programs(cluster):
        # Prometheus and the exporters watch the hosts from the machine itself; everything else runs on a host
        on_machine = prog.role == "monitoring" or prog.role.startswith("exporter")
        assert (prog.host is None) == on_machine, prog
        assert prog.user == ("" if prog.name in ROOT_STARTED else SERVICE_USER), prog
        if prog.user and on_machine:  # supervisord switches it (``user =``), as on one machine
            assert prog.launch == prog.command
        elif prog.user:
            assert prog.launch.startswith(f"ip netns exec {prog.host.netns} setpriv --reuid={SERVICE_USER} ")
