"""Which URLs are emitted, and which of them a change affects.

Every public page is a URL served by the app itself; the builder fetches it through the app and writes
the bytes. Feature packages add their URLs with :func:`register` (``lambda session: [...]``), so a new
feature's pages (flash-sale product pages, for instance) are emitted and rebuilt the same way.

A change is described by the cache namespaces the editors' code already records after commit
(``article:<slug>``, ``articles``, ``ads``, ``regions``); :func:`affected_urls` turns them into the
exact pages to render again: the article, the pages that list it (found through their surrogate keys
in the manifest, so an article moved to another category is also removed from its old lists), its
category's pages, and the homepage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from breakwater.content.models import Article, Category, Status
from breakwater.content.services import PAGE_SIZE

Provider = Callable[[Session], Iterable[str]]
_providers: list[Provider] = []


def register(provider: Provider) -> Provider:
    _providers.append(provider)
    return provider


Affected = Callable[[Session, str], Iterable[str]]
_affected: dict[str, Affected] = {}


def register_affected(prefix: str) -> Callable[[Affected], Affected]:
    """``@register_affected("flash:")``: the URLs a change in a namespace with that prefix affects."""

    def decorate(fn: Affected) -> Affected:
        _affected[prefix] = fn
        return fn

    return decorate


def category_urls(session: Session, category: Category) -> list[str]:
    total = session.scalar(
        select(func.count()).select_from(Article).where(
            Article.status == Status.PUBLISHED, Article.category_id == category.id
        )
    ) or 0  # fmt: skip
    pages = max(1, -(-total // PAGE_SIZE))
    return [f"/categories/{category.slug}"] + [f"/categories/{category.slug}/page/{n}" for n in range(2, pages + 1)]


@register
def content_pages(session: Session) -> list[str]:
    urls = ["/", "/regions"]
    for category in session.scalars(select(Category).order_by(Category.sort_order, Category.id)):
        urls += category_urls(session, category)
    published = session.scalars(select(Article.slug).where(Article.status == Status.PUBLISHED))
    urls += [f"/articles/{slug}" for slug in published]
    return urls


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
    pages = manifest.get("pages", {})
    for ns in sorted(set(namespaces)):
        if ns.startswith("article:"):
            slug = ns.split(":", 1)[1]
            url = f"/articles/{slug}"
            urls[url] = None
            owners = set()
            if url in pages and pages[url].get("keys"):
                owners.add(pages[url]["keys"][0])
            article = session.scalars(select(Article).where(Article.slug == slug)).first()
            if article is not None:
                owners.add(f"article-{article.id}")
                for u in category_urls(session, article.category):
                    urls[u] = None
            for other, entry in pages.items():  # every page that showed it (lists, the homepage)
                if owners & set(entry.get("keys", ())):
                    urls[other] = None
            keys |= owners
            urls["/"] = None
        elif ns == "articles":
            urls["/"] = None
            for category in session.scalars(select(Category)):
                keys.add(f"category-{category.slug}")
                for u in category_urls(session, category):
                    urls[u] = None
        elif ns == "ads":
            urls["/"] = None
            keys |= {"home", "ads"}
        elif ns == "regions":
            urls["/regions"] = None
            keys.add("regions")
        else:
            for prefix, fn in _affected.items():
                if ns.startswith(prefix):
                    for url in fn(session, ns):
                        urls[url] = None
    # Pages of a list that got shorter disappear: render them too (they answer 404 and are removed).
    for url in list(pages):
        if url.startswith("/categories/") and any(u.startswith(url.split("/page/")[0]) for u in urls):
            urls.setdefault(url, None)
    return list(urls), keys
