"""Talk to the stack's supervisord over its unix socket (XML-RPC)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from breakwater_tools.stack.cluster import Host
from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.files import env_line
from breakwater_tools.stack.layout import Layout


@dataclass
class Program:
    """One supervisord program; ``role`` and ``port`` feed `breakwater stack status`."""

    name: str
    role: str
    command: str
    port: int | None
    autostart: bool = True
    startsecs: int = 2
    stopsignal: str = "TERM"
    stopwaitsecs: int = 30
    priority: int = 100  # started in ascending, stopped in descending order
    #: its working directory, inside the state folder (filled in by :func:`programs`): what a program leaves
    #: in its cwd (a crash dump: RabbitMQ's MnesiaCore.*, erl_crash.dump, core) stays with the stack
    directory: str = ""
    environment: str = ""
    stopasgroup: bool = True
    host: Host | None = None  # in a cluster: the host (network namespace) it runs on
    address: str = ""  # where it listens (`breakwater stack status` checks the port there); empty = HOST
    #: the OS user it runs as when the stack starts as root (filled in by :func:`programs`; see
    #: :mod:`breakwater_tools.stack.users`); empty: as supervisord runs
    user: str = ""
    group: str = ""

    @property
    def launch(self) -> str:
        """The command supervisord runs: inside its host's network namespace in a cluster, switched to its user
        there by ``setpriv`` (``ip netns exec`` needs root; both exec in place: supervisord's pid stays the
        program's); on one machine supervisord switches (``user =``)."""
        if not self.host:
            return self.command
        switch = f"setpriv --reuid={self.user} --regid={self.group} --init-groups -- " if self.user else ""
        return f"ip netns exec {self.host.netns} {switch}{self.command}"

    @property
    def env_line(self) -> str:
        """Its supervisord ``environment``: a switched program's USER, LOGNAME and HOME are its user's (HOME its
        own folder: the service user has none)."""
        if not self.user:
            return self.environment
        own = {"USER": self.user, "LOGNAME": self.user}
        if "HOME=" not in self.environment:
            own["HOME"] = self.directory
        return ",".join(filter(None, [self.environment, env_line(own)]))


def read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class Supervisor:
    def __init__(self, layout: Layout):
        self.layout = layout

    @property
    def pid(self) -> int | None:
        return read_pid(self.layout.supervisor_pid)

    def rpc(self):
        transport = SupervisorTransport(None, None, f"unix://{self.layout.supervisor_sock}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def start_daemon(self, env: dict[str, str]) -> None:
        """Start supervisord (it daemonizes itself) and wait for its control socket."""
        cmd = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.layout.supervisor_conf)]
        # umask before it opens its own log (the config's umask applies once it runs): nobody else reads the logs
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=self.layout.state, umask=0o027)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-300:]
            raise StackError(f"supervisord did not start ({output}); see {self.layout.logs}/supervisord.log.")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.rpc().getState()
                return
            except (OSError, xmlrpc.client.Fault):
                time.sleep(0.1)
        raise StackError(
            f"supervisord started but its socket {self.layout.supervisor_sock} never answered; "
            f"see {self.layout.logs}/supervisord.log."
        )

    def processes(self) -> dict[str, dict]:
        return {p["name"]: p for p in self.rpc().getAllProcessInfo()}

    def start(self, name: str, wait: bool = True) -> None:
        """Start one program; with ``wait=False`` return at once (``wait_running`` checks it later)."""
        try:
            self.rpc().startProcess(name, wait)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" not in fault.faultString:
                raise StackError(
                    f"{name} crashed while starting ({fault.faultString}); "
                    f"last lines of {self.log_path(name)}:\n{self.tail(name)}"
                ) from None

    def wait_running(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.processes()[name]["statename"]
            if state == "RUNNING":
                return
            if state in ("FATAL", "EXITED", "BACKOFF"):
                break
            time.sleep(0.2)
        raise StackError(f"{name} crashed while starting; last lines of {self.log_path(name)}:\n{self.tail(name)}")

    def alive_check(self, name: str):
        def alive() -> bool:
            try:
                return self.processes()[name]["statename"] in ("STARTING", "RUNNING")
            except (OSError, xmlrpc.client.Fault):
                return False

        return alive

    def take_down(self, name: str, timeout: float = 30.0) -> int:
        """Take one program down for good, as when its machine dies, without freezing supervisord (it holds
        every program's stdout/stderr pipe: frozen, it soon stalls every program that logs). The program's
        process group is SIGSTOPped, so it answers nothing and shuts nothing down cleanly; supervisord is told
        to stop it (so it does not restart it; the stop signal waits on the frozen process, unhandled); then
        the group is SIGKILLed. Returns the pid it killed once supervisord reports the program STOPPED;
        :meth:`bring_back` starts it again. supervisord's pid is the program's own (MariaDB, Redis: the
        server; gunicorn, Celery: the master; ``ip netns exec`` execs in place, it does not fork)."""
        rpc = self.rpc()
        info = rpc.getProcessInfo(name)
        pid = info["pid"]
        if info["statename"] not in ("RUNNING", "STARTING") or not pid:
            raise StackError(f"{name} is {info['statename']}: there is nothing to take down.")
        # supervisord makes each program the leader of its own process group; never signal any other group.
        group = os.getpgid(pid) == pid

        def signal_it(sig: int) -> None:
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)

        signal_it(signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 2
            while _proc_state(pid) not in ("T", "t", "Z", None) and time.monotonic() < deadline:
                time.sleep(0.005)
            rpc.stopProcess(name, False)
        finally:
            signal_it(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = rpc.getProcessInfo(name)["statename"]
            if state == "STOPPED" and not _exists(pid):
                return pid
            time.sleep(0.05)
        raise StackError(f"{name} (pid {pid}) was killed but supervisord still reports it {state}.")

    def bring_back(self, name: str, wait: bool = True) -> None:
        """Start a program :meth:`take_down` stopped (nothing happens if it is running)."""
        self.start(name, wait=wait)

    def log_path(self, name: str) -> Path:
        return self.layout.logs / f"{name}.log"

    def tail(self, name: str, lines: int = 12) -> str:
        """The end of a program's log; MariaDB writes its own (``<name>-error.log``, see node.cnf.j2)."""
        own = self.layout.logs / f"{name}-error.log"
        path = own if own.exists() else self.log_path(name)
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def shutdown(self, timeout: float = 90.0) -> None:
        """Stop every program (supervisord stops them in reverse priority) and supervisord itself."""
        pid = self.pid
        if pid is None:
            return
        try:
            self.rpc().shutdown()
        except (OSError, xmlrpc.client.Fault):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if read_pid(self.layout.supervisor_pid) is None or not _exists(pid):
                return
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL every process of the stack, then supervisord: for throwaway stacks (the test session's, the
        benchmarks'), whose state nobody keeps; a graceful :meth:`shutdown` takes half a minute.

        supervisord is frozen (SIGSTOP) before any program is killed: running, it would see a program die and
        start a fresh one (``autorestart``) that nobody kills, and that outlived the stack (a gunicorn and a
        varnishd of a benchmark's stack, parentless, their state folder deleted). Then every program's process
        group goes, then supervisord, then whatever still runs in or from the state folder
        (:func:`kill_processes_under`): a program started after the list was read, or one that left its group."""
        pid = self.pid
        infos = []
        if pid is not None:
            try:
                infos = self.rpc().getAllProcessInfo()
            except (OSError, xmlrpc.client.Fault):
                infos = []
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        for info in infos:
            if info.get("pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info["pid"], signal.SIGKILL)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        kill_processes_under(self.layout.state)


#: daemons a stack's program starts but every stack in the same network namespace shares: RabbitMQ's Erlang
#: port mapper (one per namespace, port 4369; killing the machine's would unregister every other stack's
#: RabbitMQ node). One in a cluster host's namespace of its own is that stack's and goes with it.
SHARED_DAEMONS = {"epmd"}


def scan_processes(match: Callable[[str, list[str], list[bytes]], bool]) -> list[int]:
    """The pids of every process but this one, its ancestors and the :data:`SHARED_DAEMONS` of this network
    namespace for which ``match(cwd, args, environ)`` holds (``environ`` as ``KEY=value`` bytes); a process
    that is gone, a zombie or not ours to read is left out. A deleted working directory is reported without
    its " (deleted)"."""
    spared = _self_and_ancestors()
    own_net = _net_namespace("self")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
            args = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and Path(args[0]).name in SHARED_DAEMONS and _net_namespace(entry.name) == own_net:
            continue
        if match(cwd, args, env):
            found.append(int(entry.name))
    return found


def processes_under(folder: Path) -> list[int]:
    """Every process that belongs to ``folder`` (a stack's state folder): its working directory is in it
    (every supervised program runs in its own state folder), a command-line argument names a path in it, or
    its BREAKWATER_STATE_DIR is it (what the stack's programs and the extra servers a benchmark starts
    inherit)."""
    folder = str(Path(folder).absolute()).rstrip("/")
    if folder.count("/") < 2:  # "/" or "/tmp": never a stack's own folder
        raise ValueError(f"{folder!r} is too wide a folder to kill every process under it")
    state = f"BREAKWATER_STATE_DIR={folder}".encode()

    def inside(cwd: str, args: list[str], env: list[bytes]) -> bool:
        return (
            cwd == folder
            or cwd.startswith(folder + "/")
            or any(folder + "/" in a or a.endswith(folder) for a in args)
            or state in env
        )

    return scan_processes(inside)


def kill_processes(find: Callable[[], list[int]], timeout: float = 5.0) -> list[int]:
    """SIGKILL every process ``find()`` returns until it returns none (or ``timeout``); the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in find() if _exists(p)]
        if not alive:
            break
        for p in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, signal.SIGKILL)
        killed += [p for p in alive if p not in killed]
        time.sleep(0.05)
    return killed


def kill_processes_under(folder: Path, timeout: float = 5.0) -> list[int]:
    """SIGKILL every process of :func:`processes_under` ``folder``; the pids killed."""
    return kill_processes(lambda: processes_under(folder), timeout)


def _net_namespace(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def _self_and_ancestors() -> set[int]:
    pids, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return pids


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _proc_state(pid: int) -> str | None:
    """A process's state letter in /proc (``T``: stopped), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
