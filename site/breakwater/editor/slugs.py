"""Slugs proposed from titles: pinyin for Chinese (``用 GTID 读到自己的写入`` -> ``yong-gtid-du-dao-zi-ji-de-xie-ru``),
lowercase ASCII words otherwise; a taken slug gets ``-2``, ``-3``... The editor can still change it."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from breakwater.common.fields import LIMITS
from breakwater.content.models import Article
from breakwater.content.services import SLUG_RE

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def propose(title: str) -> str:
    from pypinyin import Style, lazy_pinyin  # here: its dictionaries take half a second to load

    words = lazy_pinyin(title or "", style=Style.NORMAL, errors=lambda text: text)
    ascii_text = unicodedata.normalize("NFKD", " ".join(words)).encode("ascii", "ignore").decode()
    slug = _NOT_WORD.sub("-", ascii_text.lower()).strip("-")
    limit = LIMITS["slug"] - 4  # room for a -NNN suffix
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0] or slug[:limit]
    return slug or "article"


def taken(session: Session, slug: str, article_id: int | None = None) -> bool:
    query = select(Article.id).where(Article.slug == slug)
    if article_id:
        query = query.where(Article.id != article_id)
    return session.scalar(query.limit(1)) is not None


def unique(session: Session, base: str, article_id: int | None = None) -> str:
    candidate, n = base, 1
    while taken(session, candidate, article_id) and n < 1000:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def check(session: Session, title: str = "", slug: str = "", article_id: int | None = None) -> dict:
    """The API's answer: the proposal from the title (made unique) and whether ``slug`` (or it) is free."""
    answer: dict = {}
    if title:
        answer["proposal"] = unique(session, propose(title), article_id)
    wanted = slug or answer.get("proposal", "")
    answer["slug"] = wanted
    answer["valid"] = bool(SLUG_RE.match(wanted))
    answer["available"] = answer["valid"] and not taken(session, wanted, article_id)
    return answer
