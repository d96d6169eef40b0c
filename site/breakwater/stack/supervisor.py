"""Talk to the stack's supervisord over its unix socket (XML-RPC)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

from supervisor.xmlrpc import SupervisorTransport

from breakwater.stack.errors import StackError
from breakwater.stack.layout import Layout


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
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=self.layout.state)
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
        """SIGKILL every program's process group, then supervisord: for throwaway stacks (the test
        session's), whose state nobody keeps; a graceful :meth:`shutdown` takes half a minute."""
        pid = self.pid
        if pid is None:
            return
        try:
            infos = self.rpc().getAllProcessInfo()
        except (OSError, xmlrpc.client.Fault):
            infos = []
        for info in infos:
            if info.get("pid"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info["pid"], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


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
