"""Reading articles for visitors (replicas, cached by the callers) and changing them for editors."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from breakwater.accounts.models import User
from breakwater.common import fields
from breakwater.common.errors import ApiError
from breakwater.common.times import utcnow
from breakwater.content.models import Article, Category, PublishEvent, Status
from breakwater.content.rendering import render_markdown

PAGE_SIZE = 10
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


# ------------------------------------------------------------------ visitors
def categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.sort_order, Category.id)))


def category_by_slug(session: Session, slug: str) -> Category:
    category = session.scalars(select(Category).where(Category.slug == slug)).first()
    if category is None:
        raise ApiError(404, "category_not_found", f"There is no category {slug!r}.")
    return category


def published_page(session: Session, category: str | None, page: int) -> dict:
    query = select(Article).where(Article.status == Status.PUBLISHED)
    count = select(func.count()).select_from(Article).where(Article.status == Status.PUBLISHED)
    cat = None
    if category:
        cat = category_by_slug(session, category)
        query = query.where(Article.category_id == cat.id)
        count = count.where(Article.category_id == cat.id)
    total = session.scalar(count) or 0
    rows = session.scalars(
        query.order_by(Article.published_at.desc(), Article.id.desc()).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    )
    return {
        "category": cat.to_json() if cat else None,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "total": total,
        "articles": [a.to_summary() for a in rows],
    }


def latest_by_category(session: Session, per_category: int = 5) -> list[dict]:
    result = []
    for cat in categories(session):
        rows = session.scalars(
            select(Article)
            .where(Article.status == Status.PUBLISHED, Article.category_id == cat.id)
            .order_by(Article.published_at.desc(), Article.id.desc())
            .limit(per_category)
        )
        result.append({**cat.to_json(), "articles": [a.to_summary() for a in rows]})
    return result


def published_article(session: Session, slug: str) -> dict:
    article = session.scalars(select(Article).where(Article.slug == slug, Article.status == Status.PUBLISHED)).first()
    if article is None:
        raise ApiError(404, "article_not_found", f"There is no published article {slug!r}.")
    return article.to_json()


def parse_page(raw: str | None) -> int:
    if raw in (None, ""):
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ApiError(400, "invalid_page", "page must be a whole number from 1 to 10000.")
    return int(raw)


# ------------------------------------------------------------------ editors
def validate_article(session: Session, data: dict, body_limit: int, partial: bool = False) -> dict:
    clean: dict = {}
    for field, required in (("title", True), ("slug", True), ("summary", False), ("cover_url", False)):
        if partial and field not in data:
            continue
        clean[field] = fields.text(data, field, required)
    if "slug" in clean and not SLUG_RE.match(clean["slug"]):
        raise ApiError(400, "invalid_slug", "slug may contain lowercase letters, digits and single hyphens.")
    if "cover_url" in clean:
        clean["cover_url"] = fields.url(clean["cover_url"], "cover_url")
    if not partial or "body" in data:
        body = fields.text(data, "body", required=True)
        if len(body.encode()) > body_limit:
            raise ApiError(413, "body_too_large", f"The body is larger than {body_limit} bytes; shorten it.")
        clean["body_md"] = body
        clean["body_html"] = render_markdown(body)
    if not partial or "category" in data:
        slug = fields.text(data, "category", required=True)
        clean["category_id"] = category_by_slug(session, slug).id if slug else None
    return clean


def get_article(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise ApiError(404, "article_not_found", f"There is no article {article_id}.")
    return article


def record_event(session: Session, actor: User, action: str, subject: str, key: str, detail: str = "") -> None:
    session.add(PublishEvent(actor_id=actor.id, action=action, subject=subject, subject_key=key, detail=detail[:500]))


def _commit_unique(session: Session, slug: str) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ApiError(409, "slug_taken", f"The slug {slug!r} is already used by another article.") from None


def create_article(session: Session, actor: User, data: dict, body_limit: int) -> Article:
    clean = validate_article(session, data, body_limit)
    publish = data.get("publish") is True
    article = Article(
        **clean,
        author_id=actor.id,
        status=Status.PUBLISHED if publish else Status.DRAFT,
        published_at=utcnow() if publish else None,
    )
    session.add(article)
    record_event(session, actor, "publish" if publish else "create", "article", clean["slug"])
    _commit_unique(session, clean["slug"])
    return article


def update_article(session: Session, actor: User, article: Article, data: dict, body_limit: int) -> list[str]:
    """Returns the slugs whose pages changed (old and new when the slug was renamed)."""
    clean = validate_article(session, data, body_limit, partial=True)
    old_slug = article.slug
    for field, value in clean.items():
        setattr(article, field, value)
    record_event(session, actor, "update", "article", article.slug)
    _commit_unique(session, article.slug)
    return sorted({old_slug, article.slug})


def set_published(session: Session, actor: User, article: Article, published: bool) -> None:
    article.status = Status.PUBLISHED if published else Status.DRAFT
    if published and article.published_at is None:
        article.published_at = utcnow()
    record_event(session, actor, "publish" if published else "unpublish", "article", article.slug)
    session.commit()


def delete_article(session: Session, actor: User, article: Article) -> str:
    slug = article.slug
    session.delete(article)
    record_event(session, actor, "delete", "article", slug)
    session.commit()
    return slug


def history(session: Session, limit: int = 100) -> list[dict]:
    rows = session.scalars(select(PublishEvent).order_by(PublishEvent.id.desc()).limit(limit))
    return [r.to_json() for r in rows]
