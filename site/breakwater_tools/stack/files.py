"""Files of the local stack: the Jinja templates (nginx/, db/replication/, stack/templates/), written privately
(0600, atomically, never through a link), and the console scripts of this virtualenv."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from breakwater.settings import ROOT
from breakwater_tools.stack.programs import which

TEMPLATE_DIRS = [ROOT / "nginx", ROOT / "db" / "replication", Path(__file__).parent / "templates"]
templates = Environment(loader=FileSystemLoader([str(d) for d in TEMPLATE_DIRS]), undefined=StrictUndefined)


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with contextlib.suppress(FileNotFoundError):  # a folder the service user writes: never write through a link
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def venv_bin(name: str) -> str:
    """A console script of this virtualenv (gunicorn, celery)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (which(name) or name)


def env_line(env: dict[str, str]) -> str:
    """A supervisord ``environment`` value."""
    return ",".join(f'{k}="{v}"' for k, v in env.items())
