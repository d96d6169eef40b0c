"""Atomic files for the origin: a reader sees the whole old file or the whole new one, never a torn one.

Each file: check it is complete, write a temp file in the same folder, fsync, ``os.replace``; text files
get a ``.gz`` twin written the same way with the same mtime (Nginx ``gzip_static`` serves it, and both
encodings then carry the same Last-Modified). Twins go first, so a visitor never gets a new plain
page next to an old compressed one for longer than two renames.

:func:`write_batch` does the same for many files with one filesystem sync instead of three fsyncs
per file (the region data is ~3,400 content-hashed files; per-file fsyncs made a full build take
over 20 s on our disks): every temp file is written, then the filesystem is synced once, then all are
renamed and their folders fsynced. Readers still see whole files only (the renames), and nothing
is renamed into place before its bytes are on disk.
"""

from __future__ import annotations

import ctypes
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


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _write_tmp(path: Path, data: bytes, mtime: float, *, sync: bool) -> Path:
    tmp = _tmp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.utime(tmp, (mtime, mtime))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_atomic(path: Path, data: bytes, mtime: float) -> None:
    tmp = _write_tmp(path, data, mtime, sync=True)
    try:
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


def _syncfs(folder: Path) -> None:
    """Flush the filesystem holding ``folder`` (Linux ``syncfs``; ``sync`` elsewhere)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def write_batch(root: Path, files: list[tuple[str, bytes]]) -> None:
    """Write many files atomically with one filesystem sync (see the module docstring)."""
    for rel, data in files:
        check_complete(rel, data)
    mtime = time.time()
    pending: list[tuple[Path, Path]] = []  # (tmp, final), twins before their plain file
    try:
        for rel, data in files:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix in COMPRESSIBLE:
                twin = path.with_name(path.name + ".gz")
                pending.append((_write_tmp(twin, gzip.compress(data, 9, mtime=0), mtime, sync=False), twin))
            pending.append((_write_tmp(path, data, mtime, sync=False), path))
        if pending:
            _syncfs(root)
        for tmp, final in pending:
            os.replace(tmp, final)
    except BaseException:
        for tmp, _final in pending:
            tmp.unlink(missing_ok=True)
        raise
    for folder in {final.parent for _tmp, final in pending}:
        _fsync_dir(folder)


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
