"""Find the system programs the stack runs, installing missing ones with apt-get when allowed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from breakwater_tools.stack.errors import StackError

#: program -> Debian package that provides it
REQUIRED = {
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "redis-server": "redis-server",
    "nginx": "nginx-light",
    "varnishd": "varnish",
    "rabbitmq-server": "rabbitmq-server",
    # Prometheus and the distribution's exporters (BREAKWATER_PROMETHEUS; stack/monitoring.py)
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-mysqld-exporter": "prometheus-mysqld-exporter",
    "prometheus-redis-exporter": "prometheus-redis-exporter",
    "prometheus-varnish-exporter": "prometheus-varnish-exporter",
    "prometheus-nginx-exporter": "prometheus-nginx-exporter",
}
#: files that are not programs on PATH -> Debian package that provides them (the edge's xkey vmod)
REQUIRED_FILES = {
    "libvmod_xkey.so": "varnish-modules",
}
VMOD_DIRS = (
    "/usr/lib/varnish/vmods",
    "/usr/lib/x86_64-linux-gnu/varnish/vmods",
    "/usr/lib/aarch64-linux-gnu/varnish/vmods",
)
#: what the browser tests need: Debian's chromium (Playwright drives it; it never downloads one)
BROWSER = {"chromium": "chromium"}
BROWSER_FONTS = "fonts-wqy-microhei"  # CJK glyphs for readable screenshots
#: what `make bench-static` needs besides the stack: wrk, the HTTP load generator for static ceilings
BENCH_WRK = {"wrk": "wrk"}
SEARCH_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/local/sbin"


def which(program: str) -> str | None:
    return shutil.which(program, path=SEARCH_PATH)


def rabbitmq_bin(name: str) -> str:
    """RabbitMQ's own scripts run as the invoking user (the /usr/sbin wrappers switch to the rabbitmq user)."""
    candidate = Path("/usr/lib/rabbitmq/bin") / name
    return str(candidate) if candidate.exists() else (which(name) or name)


def vmod_path(name: str) -> str | None:
    """Full path of a Varnish module file such as ``libvmod_xkey.so``, or None."""
    for d in VMOD_DIRS:
        candidate = Path(d) / name
        if candidate.exists():
            return str(candidate)
    return None


def missing_programs() -> dict[str, str]:
    missing = {prog: pkg for prog, pkg in REQUIRED.items() if which(prog) is None}
    missing.update({name: pkg for name, pkg in REQUIRED_FILES.items() if vmod_path(name) is None})
    return missing


def _can_apt() -> bool:
    return os.geteuid() == 0 and which("apt-get") is not None and Path("/etc/debian_version").exists()


def ensure_programs(install: bool = True) -> dict[str, str]:
    """Return {program: path}; install missing Debian packages as root, else raise with the command."""
    missing = missing_programs()
    if missing:
        packages = sorted(set(missing.values()))
        command = "apt-get install -y " + " ".join(packages)
        if not (install and _can_apt()):
            raise StackError(f"Missing program(s) {', '.join(sorted(missing))}; install them with: sudo {command}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            result = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if result.returncode != 0 and cmd[1] == "install":
                raise StackError(
                    f"Installing {' '.join(packages)} failed ({result.stderr.strip()[-300:]}); "
                    f"run `{command}` yourself and retry."
                )
        still = missing_programs()
        if still:
            raise StackError(f"Programs still missing after apt-get: {', '.join(sorted(still))}; run `{command}`.")
    found = {prog: which(prog) or "" for prog in REQUIRED}
    found.update({name: vmod_path(name) or "" for name in REQUIRED_FILES})
    return found


def ensure_tool(program: str, packages: list[str], purpose: str, install: bool = True) -> str:
    """The path of ``program``, installing its Debian ``packages`` with apt-get when missing (as root);
    otherwise the error names the command. ``purpose`` completes "… need(s) PROGRAM"."""
    path = which(program)
    if path:
        return path
    command = f"apt-get install -y {' '.join(packages)}"
    if not (install and _can_apt()):
        raise StackError(f"{purpose} {program}; install it with: sudo {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, capture_output=True, text=True)
    if result.returncode != 0 or not which(program):
        raise StackError(f"Installing {program} failed ({result.stderr.strip()[-300:]}); run `{command}` yourself.")
    return which(program) or ""


def ensure_browser(install: bool = True) -> str:
    """Debian's chromium for the Playwright tests."""
    return ensure_tool("chromium", ["chromium", BROWSER_FONTS], "The browser tests need", install)


def ensure_wrk(install: bool = True) -> str:
    """Debian's wrk for `make bench-static` (Locust cannot saturate Nginx)."""
    return ensure_tool("wrk", list(BENCH_WRK.values()), "The static benchmark needs", install)


def ensure_iproute2(install: bool = True) -> str:
    """`ip` and `ss` for the cluster's network namespaces."""
    ensure_tool("ss", ["iproute2"], "The cluster needs", install)
    return ensure_tool("ip", ["iproute2"], "The cluster needs", install)


def nginx_mime_types() -> str:
    for candidate in ("/etc/nginx/mime.types", "/usr/local/nginx/conf/mime.types"):
        if Path(candidate).exists():
            return candidate
    raise StackError("nginx mime.types not found; reinstall nginx (apt-get install --reinstall nginx-common).")
