"""Several hosts on one machine: Linux network namespaces joined by veth pairs to one bridge.

``BREAKWATER_CLUSTER_HOSTS=N`` (at least 3) lays the stack out over N hosts, each a network namespace with one
address in ``BREAKWATER_CLUSTER_NETWORK``:

- host 1, the data host: the MariaDB primary, both Redis servers, RabbitMQ, the SMTP sink, the Nginx origin, the
  ``pages`` worker (emitted pages land on the origin's disk), ``flash-markers`` (each sale's state file and
  rejection marker, which the origin reads from the same disk), beat and Flower;
- hosts 2 .. N-1, the app hosts: one gunicorn each, the replicas spread over them, and a worker for every other
  queue; the last app host also runs the automatic-failover watcher, so that it outlives the primary's host;
- host N, the edge host: Varnish.

Every service binds to its host's address, so nothing crosses between hosts over 127.0.0.1. The machine's own
namespace reaches every host through the bridge (its address is the network's first). Only namespaces, links and
addresses this module creates are touched, all named after the stack (``bw<APP_PORT>-h1`` ...), and only as root.

The file system stays shared between the namespaces; on real machines the ``pages`` worker therefore runs beside the
origin (as here) and media need shared storage (docker-compose.yml gives them a volume).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from breakwater.settings import ROOT, Settings
from breakwater_tools.stack.errors import StackError

#: the queues whose workers run on the data host (the others run on every app host)
DATA_HOST_QUEUES = ("pages",)


@dataclass(frozen=True)
class Host:
    index: int  # 1-based
    netns: str
    address: str
    veth: str  # the machine-side end of the host's link; the host side is called eth0
    roles: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"h{self.index}"


class Cluster:
    """The plan (which host runs what, at which address) and the plumbing (namespaces, links, addresses)."""

    def __init__(self, settings: Settings):
        self.count = settings.int("CLUSTER_HOSTS")
        if self.count and self.count < 3:
            raise ValueError(
                f"BREAKWATER_CLUSTER_HOSTS={self.count} is too few: a cluster needs a data host, at least one app "
                "host and an edge host; set it to 3 or more, or 0 for one machine."
            )
        raw = settings["CLUSTER_NETWORK"]
        try:
            self.network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise ValueError(
                f"BREAKWATER_CLUSTER_NETWORK={raw!r} is not a network; write one like 10.77.0.0/24."
            ) from None
        if self.count and self.network.num_addresses < self.count + 12:
            raise ValueError(f"BREAKWATER_CLUSTER_NETWORK={raw} is too small for {self.count} hosts; use a /24.")
        self.ident = settings.int("APP_PORT")
        self.replica_count = len(settings.replica_ports)

    @property
    def enabled(self) -> bool:
        return self.count >= 3

    # ------------------------------------------------------------------ the plan
    @property
    def gateway(self) -> str:
        """The machine's own address on the bridge."""
        return str(self.network.network_address + 1)

    @property
    def bridge(self) -> str:
        return f"bw{self.ident}br"

    @property
    def hosts(self) -> list[Host]:
        if not self.enabled:
            return []
        hosts = []
        for i in range(1, self.count + 1):
            if i == 1:
                roles = ("mariadb primary", "redis", "rabbitmq", "origin", "pages worker", "flash markers", "beat")
            elif i == self.count:
                roles = ("edge",)
            else:
                roles = ("app", "replica", "workers")
            address = str(self.network.network_address + 10 + i)
            hosts.append(Host(i, f"bw{self.ident}-h{i}", address, f"bw{self.ident}h{i}", roles))
        return hosts

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if name in (h.name, h.netns, h.address):
                return h
        names = ", ".join(h.name for h in self.hosts) or "none (BREAKWATER_CLUSTER_HOSTS is 0)"
        raise StackError(f"There is no host {name!r} in this cluster; its hosts are {names}.")

    @property
    def data_host(self) -> Host:
        return self.hosts[0]

    @property
    def app_hosts(self) -> list[Host]:
        return self.hosts[1:-1]

    @property
    def edge_host(self) -> Host:
        return self.hosts[-1]

    def replica_host(self, index: int) -> Host:
        """Replica ``index`` (1-based) lives on app host ``index``, round robin when there are more replicas."""
        apps = self.app_hosts
        return apps[(index - 1) % len(apps)]

    @property
    def watcher_host(self) -> Host:
        return self.app_hosts[-1]

    @property
    def client_pattern(self) -> str:
        """MariaDB's account host for "any host of the cluster" (address/netmask form)."""
        return f"{self.network.network_address}/{self.network.netmask}"

    # ------------------------------------------------------------------ the plumbing
    def exists(self) -> bool:
        return all(Path("/run/netns", h.netns).exists() for h in self.hosts)

    def up(self) -> None:
        """Create the bridge, one namespace per host and the links between them (idempotent)."""
        if not self.enabled:
            return
        if os.geteuid() != 0:
            raise StackError("Network namespaces need root; run `make cluster` as root (sudo make cluster).")
        from breakwater_tools.stack.programs import ensure_iproute2

        ensure_iproute2()
        prefix = self.network.prefixlen
        if not _link_exists(self.bridge):
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for h in self.hosts:
            if not Path("/run/netns", h.netns).exists():
                _ip("netns", "add", h.netns)
            _ip("-n", h.netns, "link", "set", "lo", "up")
            if not _link_exists(h.veth):
                _ip("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns)
                _ip("-n", h.netns, "addr", "add", f"{h.address}/{prefix}", "dev", "eth0")
            _ip("link", "set", h.veth, "master", self.bridge)
            _ip("link", "set", h.veth, "up")
            _ip("-n", h.netns, "link", "set", "eth0", "up")
            _ip("-n", h.netns, "route", "replace", "default", "via", self.gateway)

    def down(self) -> None:
        """Remove the namespaces (their links go with them) and the bridge."""
        for h in self.hosts:
            if Path("/run/netns", h.netns).exists():
                _ip("netns", "del", h.netns, check=False)
            if _link_exists(h.veth):
                _ip("link", "del", h.veth, check=False)
        if _link_exists(self.bridge):
            _ip("link", "del", self.bridge, check=False)

    def pids(self, host: Host) -> list[int]:
        result = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
        return [int(p) for p in result.stdout.split() if p.strip().isdigit()]

    def isolate(self, host: Host) -> None:
        """Cut the host off the network (its link down): nothing reaches it and it reaches nothing."""
        _ip("link", "set", host.veth, "down")

    def connect(self, host: Host) -> None:
        _ip("link", "set", host.veth, "up")

    def crash(self, host: Host, supervisord_pid: int | None) -> list[int]:
        """The host dies: every process in it is killed at once (the kernel closes their connections, as a
        crashed machine's peers see when its kernel still answers), then its link goes down. The supervisor
        is held meanwhile, so it does not restart them before the link is gone; it then restarts them
        cut off, as a machine rebooting without network would. `connect` brings the host back."""
        if supervisord_pid:
            os.kill(supervisord_pid, signal.SIGSTOP)
        try:
            victims = self.pids(host)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_running(p) for p in victims):
                time.sleep(0.05)
            time.sleep(0.3)  # its kernel still answers a moment (resets for the dead sockets), then it is gone
            self.isolate(host)
        finally:
            if supervisord_pid:
                os.kill(supervisord_pid, signal.SIGCONT)
        return victims

    def wrap(self, host: Host | None, command: str) -> str:
        """``command`` run inside ``host``'s namespace (as supervisord launches it)."""
        return f"ip netns exec {host.netns} {command}" if host else command


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has closed its sockets already)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _ip(*args: str, check: bool = True) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise StackError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


def cluster_env(hosts: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the cluster's stack: its own state dir and emitted pages, and the number of hosts
    (given, or the one ``cluster up`` recorded, or 4)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("BREAKWATER_STATE_DIR", str(ROOT / ".stack" / "cluster"))
    state = Path(env["BREAKWATER_STATE_DIR"])
    env.setdefault("BREAKWATER_STATIC_DIR", str(state / "static_build"))
    if hosts is None and not env.get("BREAKWATER_CLUSTER_HOSTS"):
        try:
            hosts = int(json.loads((state / "cluster.json").read_text())["hosts"])
        except (OSError, ValueError, KeyError):
            hosts = 4
    if hosts is not None:
        env["BREAKWATER_CLUSTER_HOSTS"] = str(hosts)
    return env
