"""The static pages content emits (categories, paged, and articles) and what a change to them affects."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from breakwater.content.models import Article, Category, Status
from breakwater.content.services import PAGE_SIZE
from breakwater.pages import registry


def category_urls(session: Session, category: Category) -> list[str]:
    total = session.scalar(
        select(func.count()).select_from(Article).where(
            Article.status == Status.PUBLISHED, Article.category_id == category.id
        )
    ) or 0  # fmt: skip
    pages = max(1, -(-total // PAGE_SIZE))
    return [f"/categories/{category.slug}"] + [f"/categories/{category.slug}/page/{n}" for n in range(2, pages + 1)]


@registry.register
def content_pages(session: Session) -> list[str]:
    urls: list[str] = []
    for category in session.scalars(select(Category).order_by(Category.sort_order, Category.id)):
        urls += category_urls(session, category)
    published = session.scalars(select(Article.slug).where(Article.status == Status.PUBLISHED))
    return urls + [f"/articles/{slug}" for slug in published]


@registry.register_affected("article:")
def article_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    """The article, the pages that list it (found through their surrogate keys in the manifest, so an article
    moved to another category also leaves its old lists), its category's pages and the homepage."""
    slug = namespace.split(":", 1)[1]
    url = f"/articles/{slug}"
    pages = manifest.get("pages", {})
    urls = {url: None}
    owners = set()
    if url in pages and pages[url].get("keys"):
        owners.add(pages[url]["keys"][0])
    article = session.scalars(select(Article).where(Article.slug == slug)).first()
    if article is not None:
        owners.add(f"article-{article.id}")
        urls.update(dict.fromkeys(category_urls(session, article.category)))
    for other, entry in pages.items():  # every page that showed it (lists, the homepage)
        if owners & set(entry.get("keys", ())):
            urls[other] = None
    urls["/"] = None
    return _with_shortened_lists(list(urls), pages), owners


@registry.register_affected("articles")
def articles_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    urls, keys = ["/"], set()
    for category in session.scalars(select(Category)):
        keys.add(f"category-{category.slug}")
        urls += category_urls(session, category)
    return _with_shortened_lists(urls, manifest.get("pages", {})), keys


def _with_shortened_lists(urls: list[str], pages: dict) -> list[str]:
    """Pages of a list that got shorter disappear: render them too (they answer 404 and are removed)."""
    extra = [
        url
        for url in pages
        if url.startswith("/categories/") and any(u.startswith(url.split("/page/")[0]) for u in urls)
    ]
    return list(dict.fromkeys(urls + extra))
