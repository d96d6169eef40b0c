"""Who the stack's services run as, and who owns their state.

Started as root (`make cluster` always; `make run`, `make test` on machines that work as root), every service runs
as the unprivileged system user :data:`SERVICE_USER` (no login shell, no home), which `make deps` creates (and the
stack's start, if it is missing):

- supervisord (root) starts MariaDB, Redis, the Sentinels, RabbitMQ, gunicorn, the Celery workers and beat,
  Flower, the SMTP sink and the failover watcher as that user (its per-program ``user =``; on a cluster host
  ``ip netns exec`` needs root, so ``setpriv`` switches after it);
- Nginx's master and varnishd's manager start as root (:data:`ROOT_STARTED`) and drop privileges themselves: the
  Nginx workers run as the user (``user`` in nginx.conf), Varnish's child in its unix jail (``-j unix``).

The state folder stays root's (supervisord's configuration and socket, the logs, Nginx's and the edge's
configuration: files root reads or runs are never the service user's to change); the folders the services write
(MariaDB, Redis, RabbitMQ, the mail sink, media, the static build, ...) are the service user's, mode 0700, and so
are the files holding secrets they read (secrets.env, the servers' configurations with passwords).

Started as a normal user, everything runs as that user and nothing switches (no ``user =`` lines, Varnish
without a jail); the modes are the same.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from breakwater_tools.stack.errors import StackError
from breakwater_tools.stack.programs import ensure_tool, which

if TYPE_CHECKING:
    from breakwater_tools.stack.layout import Layout

#: the unprivileged system user the services run as when the stack is started as root
SERVICE_USER = "breakwater"
#: programs started as root that drop privileges themselves: Nginx's master (its workers run as the service user),
#: varnishd's manager (its child runs in the unix jail)
ROOT_STARTED = ("nginx", "edge")


@dataclass(frozen=True)
class RunAs:
    """The OS user every service runs as; ``switch``: the stack starts as root and switches to it."""

    name: str
    switch: bool = False

    @property
    def group(self) -> str:
        """The user's primary group (``breakwater``: `make deps` creates it with the user)."""
        try:
            return grp.getgrgid(pwd.getpwnam(self.name).pw_gid).gr_name
        except KeyError:
            return self.name


def current_user() -> str:
    """The effective user's name (not $USER, which a switched program inherits from root)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def run_as() -> RunAs:
    """As root: the service user; otherwise the invoking user, without switching."""
    return RunAs(SERVICE_USER, switch=True) if os.geteuid() == 0 else RunAs(current_user())


def _useradd(name: str) -> list[str]:
    shell = which("nologin") or "/bin/false"
    if which("useradd"):
        return [
            "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
            "--shell", shell, "--comment", "Breakwater services", name,
        ]  # fmt: skip
    return ["adduser", "--system", "--group", "--no-create-home", "--home", "/nonexistent", "--shell", shell, name]


def ensure_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """The service user, created as a system user (no login shell, no home) when it is missing (as root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    command = " ".join(_useradd(name))
    if os.geteuid() != 0:
        raise StackError(
            f"The system user {name!r} the services run as (when started as root) does not exist; "
            f"create it with `make deps` or: sudo {command}"
        )
    last = ""
    for _attempt in range(50):  # two stacks starting at once: one waits for the other's lock on /etc/passwd
        result = subprocess.run(_useradd(name), capture_output=True, text=True)
        try:
            return pwd.getpwnam(name)
        except KeyError:
            last = (result.stderr or result.stdout).strip()
            time.sleep(0.1)
    raise StackError(f"Creating the system user {name!r} failed ({last[-300:]}); run `{command}` yourself.")


def _as_user(pw: pwd.struct_passwd) -> dict:
    """subprocess arguments that run a command as ``pw`` (its groups included)."""
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": os.getgrouplist(pw.pw_name, pw.pw_gid)}


def _blocked(pw: pwd.struct_passwd, folders: list[Path]) -> list[Path]:
    """The folders ``pw`` cannot pass through (search permission), shallowest first."""
    script = 'for d; do [ -x "$d" ] || printf "%s\\n" "$d"; done'
    result = subprocess.run(
        ["sh", "-c", script, "sh", *map(str, folders)], capture_output=True, text=True, **_as_user(pw)
    )
    return sorted((Path(line) for line in result.stdout.splitlines() if line), key=lambda p: len(p.parts))


def grant_passage(pw: pwd.struct_passwd, paths: list[Path], install: bool = True, echo=print) -> list[Path]:
    """Let the service user pass through every folder on the way to ``paths`` (the interpreter, the checkout,
    the state and static folders): a folder it cannot pass (``/root`` holding a pyenv interpreter is mode 0700;
    so is a test session's mkdtemp folder) gets search permission for that user alone (an ACL entry
    ``u:<user>:x``: no listing, nobody else). ``install``: apt-get may install setfacl. Returns the folders
    granted."""
    folders = sorted({f for p in paths for f in [*reversed(Path(p).parents), Path(p)] if f.is_dir()}, key=str)
    granted: list[Path] = []
    for _round in range(len(folders) + 1):
        blocked = _blocked(pw, folders)
        if not blocked:
            return granted
        folder = blocked[0]
        fix = f"setfacl -m u:{pw.pw_name}:x {folder}"
        if os.geteuid() != 0:
            raise StackError(
                f"The service user {pw.pw_name!r} cannot reach {folder} (mode "
                f"{oct(folder.stat().st_mode & 0o777)}); allow it with `make deps` or: sudo {fix}"
            )
        setfacl = ensure_tool("setfacl", ["acl"], "Letting the service user reach the stack's files needs", install)
        result = subprocess.run([setfacl, "-m", f"u:{pw.pw_name}:x", str(folder)], capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(
                f"The service user {pw.pw_name!r} cannot reach {folder} and `{fix}` failed "
                f"({result.stderr.strip()[-200:]}); give it search permission there (chmod o+x) or move the "
                "stack's files elsewhere."
            )
        echo(f"{pw.pw_name} may now pass through {folder} (ACL u:{pw.pw_name}:x)")
        granted.append(folder)
    raise StackError(f"The service user {pw.pw_name!r} still cannot reach {blocked[0]}.")


def check_interpreter(pw: pwd.struct_passwd) -> None:
    """The Python services (gunicorn, Celery, the mail sink) start as the service user: its interpreter and this
    checkout must be readable to it."""
    result = subprocess.run(
        [sys.executable, "-c", "import breakwater_tools.stack"], capture_output=True, text=True, cwd="/", **_as_user(pw)
    )
    if result.returncode != 0:
        raise StackError(
            f"The service user {pw.pw_name!r} cannot run {sys.executable} with this checkout "
            f"({result.stderr.strip()[-300:]}); make the interpreter, the virtualenv and the checkout readable "
            "to it."
        )


def prepare(layout: Layout, install: bool = True, echo=print) -> None:
    """As root: the service user exists and reaches the interpreter, the checkout and the stack's folders
    (``install``: apt-get may install setfacl for that)."""
    if not layout.run_as.switch:
        return
    from breakwater.settings import ROOT

    pw = ensure_user(layout.run_as.name)
    s = layout.settings
    paths = [
        Path(sys.executable).resolve().parent, Path(sys.prefix), ROOT / "site",
        layout.state.parent, Path(s["STATIC_DIR"]).absolute().parent, s.media_dir.absolute().parent,
    ]  # fmt: skip
    grant_passage(pw, [p for p in paths if p.exists()], install=install, echo=echo)
    check_interpreter(pw)


# ---------------------------------------------------------------------- ownership and modes of the state
def set_owner(path: Path, uid: int, gid: int) -> None:
    """chown without following a link (a link planted in a folder the service user writes)."""
    if uid >= 0:
        os.chown(path, uid, gid, follow_symlinks=False)


def hand_over_tree(top: Path, uid: int, gid: int) -> None:
    """A folder the service user did not own yet (made by an earlier run as root): everything in it becomes
    the user's and loses every permission for others. Only then: once the user can write in it, a walk by
    root could be led elsewhere."""
    for folder, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            set_owner(path, uid, gid)
            st = path.lstat()
            if not path.is_symlink() and st.st_mode & 0o007:
                path.chmod(st.st_mode & ~0o007)


def hand_over(path: Path, run: RunAs, mode: int = 0o600) -> None:
    """A file root rendered for a service that reads it as the service user (its configuration)."""
    if not path.exists() or path.is_symlink():
        return
    if run.switch:
        pw = pwd.getpwnam(run.name)
        set_owner(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)
