"""What the static site is made of: each feature plugs its pages in here; this module knows none of them.

Every public page is a URL served by the app itself; the builder fetches it through the app and writes the
bytes. A feature package declares, in its own ``pages.py`` (imported by the app factory):

- :func:`register`: its URLs (``lambda session: [...]``);
- :func:`register_affected`: for a cache namespace it records after commit (``article:<slug>``, ``ads``,
  ``flash:<id>``...), the URLs to render again and the surrogate keys whose edge copies must go;
- :func:`register_files`: files it emits beside the pages (content-hashed region data, media variants), with
  the namespace whose change rewrites them;
- :func:`register_next_change`: when its pages next change by the clock alone (an ad window or a sale opening),
  so a rebuild is scheduled for that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask
from sqlalchemy.orm import Session

Provider = Callable[[Session], Iterable[str]]
#: (session, namespace, manifest) -> (URLs to render again, surrogate keys to purge)
Affected = Callable[[Session, str, dict], tuple[Iterable[str], Iterable[str]]]
#: app -> [(URL, loader returning (bytes, surrogate keys))]
FileSource = Callable[[Flask], Iterable[tuple[str, Callable[[], tuple[bytes, list[str]]]]]]
#: session -> seconds until the pages change by the clock alone, or None
NextChange = Callable[[Session], float | None]

_providers: list[Provider] = []
_affected: dict[str, Affected] = {}
_files: list[tuple[str, str, FileSource]] = []
_next_change: list[NextChange] = []


def register(provider: Provider) -> Provider:
    _providers.append(provider)
    return provider


def register_affected(prefix: str) -> Callable[[Affected], Affected]:
    """``@register_affected("flash:")``: what a change in a namespace starting with that prefix affects."""

    def decorate(fn: Affected) -> Affected:
        _affected[prefix] = fn
        return fn

    return decorate


def register_files(namespace: str, prefix: str, source: FileSource) -> None:
    """Files under ``prefix`` (content-hashed names: never purged) rewritten when ``namespace`` changes."""
    _files.append((namespace, prefix, source))


def register_next_change(fn: NextChange) -> NextChange:
    _next_change.append(fn)
    return fn


def all_urls(session: Session) -> list[str]:
    seen: dict[str, None] = {}
    for provider in _providers:
        for url in provider(session):
            seen.setdefault(url, None)
    return list(seen)


def affected_urls(session: Session, namespaces: Iterable[str], manifest: dict) -> tuple[list[str], set[str]]:
    """(URLs to render again, surrogate keys whose edge copies must go) for a set of changes."""
    urls: dict[str, None] = {}
    keys: set[str] = set()
    for ns in sorted(set(namespaces)):
        for prefix, fn in _affected.items():
            if ns.startswith(prefix):
                found, purge = fn(session, ns, manifest)
                urls.update(dict.fromkeys(found))
                keys |= set(purge)
    return list(urls), keys


def file_sources(app: Flask, namespaces: Iterable[str] | None = None) -> dict:
    """URL -> loader of every registered file (only those of ``namespaces`` when given)."""
    wanted = None if namespaces is None else set(namespaces)
    sources: dict = {}
    for namespace, _prefix, source in _files:
        if wanted is None or namespace in wanted:
            sources.update(source(app))
    return sources


def hashed_prefixes() -> tuple[str, ...]:
    return tuple(prefix for _ns, prefix, _source in _files)


def seconds_to_next_change(session: Session) -> float | None:
    edges = [e for e in (fn(session) for fn in _next_change) if e is not None]
    return min(edges) if edges else None
