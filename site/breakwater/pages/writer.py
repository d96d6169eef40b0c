"""Atomic files for the origin: a reader sees the whole old file or the whole new one, never a torn one.

Each file: check it is complete, write a temp file in the same folder, fsync, ``os.replace``; text files
get a ``.gz`` twin written the same way with the same mtime (Nginx ``gzip_static`` serves it, and both
encodings then carry the same Last-Modified). Twins go first, so a visitor never gets a new plain
page next to an old compressed one for longer than two renames.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

SENTINEL = "<!--bw:end-->"
COMPRESSIBLE = {".html", ".css", ".js", ".json", ".svg", ".txt", ".xml"}


class IncompleteFile(ValueError):
    """A rendered file failed its completeness check; the previous file stays in place."""


def url_to_path(url: str) -> str:
    """``/`` -> ``index.html``; ``/articles/x`` -> ``articles/x/index.html``; ``/assets/a.1.css`` as is."""
    path = url.split("?", 1)[0].strip("/")
    if not path:
        return "index.html"
    last = path.rsplit("/", 1)[-1]
    return path if "." in last else f"{path}/index.html"


def check_complete(rel: str, data: bytes) -> None:
    if not data:
        raise IncompleteFile(f"{rel} rendered empty")
    if rel.endswith(".html") and not data.rstrip().endswith(SENTINEL.encode()):
        raise IncompleteFile(f"{rel} does not end with its closing sentinel {SENTINEL}")
    if rel.endswith(".json"):
        try:
            json.loads(data)
        except ValueError as exc:
            raise IncompleteFile(f"{rel} is not complete JSON ({exc})") from None


def _write_atomic(path: Path, data: bytes, mtime: float) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(root: Path, rel: str, data: bytes) -> None:
    check_complete(rel, data)
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    mtime = time.time()
    if path.suffix in COMPRESSIBLE:
        _write_atomic(path.with_name(path.name + ".gz"), gzip.compress(data, 9, mtime=0), mtime)
    _write_atomic(path, data, mtime)
    _fsync_dir(path.parent)


def remove_file(root: Path, rel: str) -> None:
    path = root / rel
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".gz").unlink(missing_ok=True)
    parent = path.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def write_json(path: Path, data: object) -> None:
    """The manifest itself, atomically (no sentinel check)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True).encode(), time.time())
