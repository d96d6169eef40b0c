"""Emit pages into the static folder: full builds and incremental rebuilds, both through the manifest.

The manifest (``<static>/_manifest.json``: URL -> file, content hash, surrogate keys; old URL -> new
URL for renamed articles) lets a rebuild skip pages whose bytes did not change and yields exactly
the URLs and keys that changed, for the purge step. Pages are fetched from the app itself (the same
view a visitor without a static file would get), with the publish's causal token, so a build never
renders a replica older than the publish it follows. One build at a time per folder (``flock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask

from breakwater import extensions
from breakwater.pages import registry, writer
from breakwater.pages.registry import affected_urls, all_urls

MANIFEST = "_manifest.json"
LOCK = ".build.lock"


class BuildError(RuntimeError):
    """A page could not be rendered or written; what was already in place stays served."""


@dataclass
class BuildReport:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed_urls(self) -> list[str]:
        return [*self.written, *self.removed]

    def to_json(self) -> dict:
        return {
            "written": self.written, "unchanged": self.unchanged, "removed": self.removed,
            "keys": sorted(self.keys), "redirects": self.redirects, "seconds": round(self.seconds, 3),
        }  # fmt: skip


def load_manifest(root: Path) -> dict:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {"pages": {}, "redirects": {}}


@contextmanager
def _locked(root: Path):
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = (root / LOCK).open("a")
    except OSError as exc:
        raise BuildError(
            f"cannot write to {root} ({exc.strerror}); fix its permissions or set BREAKWATER_STATIC_DIR"
        ) from None
    with fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield


class Builder:
    def __init__(self, app: Flask, root: Path | None = None, *, token: str = "", cache_seq: int = 0):
        self.app = app
        self.root = Path(root or extensions.settings(app)["STATIC_DIR"])
        self.headers = {}
        if token:
            from breakwater.database.consistency import HEADER, token_signer

            value = f"{token}~{cache_seq}" if cache_seq else token
            self.headers[HEADER] = token_signer(app).sign(value).decode()

    # ------------------------------------------------------------------ sources
    def _fetch(self, url: str) -> tuple[bytes, list[str]] | None:
        """The page's bytes and surrogate keys, or None when the page no longer exists."""
        with self.app.test_client() as client:
            response = client.get(url, headers=self.headers)
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            raise BuildError(f"{url} answered {response.status_code}; kept the previous file")
        return response.get_data(), (response.headers.get("xkey") or "").split()

    # ------------------------------------------------------------------ builds
    def build_all(self, dry_run: bool = False, progress: Callable[[int, str], None] | None = None) -> BuildReport:
        from breakwater.extensions import db

        with self.app.app_context():
            urls = all_urls(db.session)
            files = registry.file_sources(self.app)
            return self._build(urls, files, full=True, dry_run=dry_run, progress=progress)

    def rebuild(self, namespaces: Iterable[str], dry_run: bool = False) -> BuildReport:
        from breakwater.extensions import db

        namespaces = set(namespaces)
        with self.app.app_context():
            urls, keys = affected_urls(db.session, namespaces, load_manifest(self.root))
            files = registry.file_sources(self.app, namespaces)
            report = self._build(urls, files, full=False, dry_run=dry_run)
            report.keys |= keys
            return report

    def emit_files(self, files: dict[str, Callable[[], tuple[bytes, list[str]]]]) -> BuildReport:
        """Write these files (URL -> source) through the manifest now; nothing else is touched."""
        return self._build([], files, full=False, dry_run=False)

    def remove_urls(self, urls: Iterable[str]) -> None:
        with _locked(self.root):
            manifest = load_manifest(self.root)
            pages = manifest.setdefault("pages", {})
            for url in urls:
                entry = pages.pop(url, None)
                writer.remove_file(self.root, entry["file"] if entry else writer.url_to_path(url))
            writer.write_json(self.root / MANIFEST, manifest)

    def _build(self, urls, files, *, full: bool, dry_run: bool, progress=None) -> BuildReport:
        started = time.monotonic()
        report = BuildReport()
        with _locked(self.root):
            manifest = load_manifest(self.root)
            pages: dict = manifest.setdefault("pages", {})
            redirects: dict = manifest.setdefault("redirects", {})
            seen: set[str] = set()
            removed_owners: dict[str, str] = {}
            to_remove: list[str] = []  # removed only once the manifest (with any redirect) is written
            todo = [(u, None) for u in urls] + list(files.items())
            batch: list[tuple[str, str, bytes, dict]] = []
            for i, (url, source) in enumerate(todo):
                if progress:
                    progress(i, url, len(todo))
                fetched = source() if source else self._fetch(url)
                seen.add(url)
                if fetched is None:
                    if url in pages:
                        report.removed.append(url)
                        owner = (pages[url].get("keys") or [""])[0]
                        removed_owners[url] = owner
                        report.keys.add(owner)
                        to_remove.append(pages.pop(url)["file"])
                    continue
                data, keys = fetched
                digest = hashlib.sha256(data).hexdigest()
                entry = pages.get(url)
                rel = writer.url_to_path(url)
                if entry and entry["hash"] == digest and (self.root / rel).exists():
                    report.unchanged += 1
                    continue
                report.written.append(url)
                report.keys.update(keys[:1])  # the page's own key (article-<id>, home, ...)
                if dry_run:
                    continue
                if source:  # assets and region data: many small files, written together below
                    batch.append((url, rel, data, {"file": rel, "hash": digest, "keys": keys}))
                    continue
                try:
                    writer.write_file(self.root, rel, data)
                except (OSError, writer.IncompleteFile) as exc:
                    raise BuildError(f"writing {url} failed: {exc}") from exc
                pages[url] = {"file": rel, "hash": digest, "keys": keys}
                redirects.pop(url, None)
            if batch:
                try:
                    writer.write_batch(self.root, [(rel, data) for _url, rel, data, _entry in batch])
                except (OSError, writer.IncompleteFile) as exc:
                    raise BuildError(f"writing {len(batch)} files ({batch[0][0]}, ...) failed: {exc}") from exc
                for url, _rel, _data, entry in batch:
                    pages[url] = entry
                    redirects.pop(url, None)
            if full:  # pages no provider lists any more (hashed files of older versions included)
                for url in [u for u in pages if u not in seen]:
                    report.removed.append(url)
                    to_remove.append(pages.pop(url)["file"])
            self._redirects(report, removed_owners, pages, redirects)
            if not dry_run:
                # The manifest first: a visitor who misses the old file then already finds its redirect.
                writer.write_json(self.root / MANIFEST, manifest)
                for rel in to_remove:
                    writer.remove_file(self.root, rel)
        # Nginx tags emitted article pages by URL (article-<slug>); the app by id: purge both names.
        for url in report.changed_urls:
            if url.startswith("/articles/"):
                report.keys.add("article-" + url.removeprefix("/articles/").strip("/"))
        report.keys.discard("")
        report.seconds = time.monotonic() - started
        return report

    @staticmethod
    def _redirects(report: BuildReport, owners_of_removed: dict[str, str], pages: dict, redirects: dict) -> None:
        """A removed article page whose article lives on under another slug leaves a redirect."""
        current = {e["keys"][0]: u for u, e in pages.items() if u.startswith("/articles/") and e.get("keys")}
        for url, owner in owners_of_removed.items():
            target = current.get(owner)
            if url.startswith("/articles/") and target and target != url:
                redirects[url] = target
                report.redirects[url] = target
        for old, new in list(redirects.items()):  # chains: a -> b, b -> c becomes a -> c
            hops = 0
            while new in redirects and redirects[new] != old and hops < 20:
                new, hops = redirects[new], hops + 1
            redirects[old] = new


def redirect_for(root: Path, url: str) -> str | None:
    return load_manifest(root).get("redirects", {}).get(url)
