"""Seed data loaded by `make run` and the test stack. Idempotent: safe on every start."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from breakwater.settings import Settings

CATEGORIES = [("news", "新闻", 1), ("tech", "科技", 2), ("life", "生活", 3)]
SLOTS = [("carousel", "首页轮播"), ("sidebar", "侧边栏")] + [(f"category_{c}", f"{n}频道") for c, n, _ in CATEGORIES]
ARTICLES = [
    (
        "news",
        "breakwater-launch",
        "Breakwater 上线",
        "一个为流量高峰而生的内容站。",
        "## 你好\n\n读写分离、缓存、静态页与秒杀。",
    ),
    (
        "tech",
        "gtid-causal-reads",
        "用 GTID 读到自己的写入",
        "不靠时间窗口的读己之写。",
        "每次提交后记录 `@@last_gtid`。",
    ),
    ("life", "weekend-market", "周末市集指南", "去哪里、买什么。", "* 早点到\n* 带上购物袋"),
]
ADS = [  # images: raster samples (breakwater.media.samples) sent through the upload pipeline
    ("carousel", "秋季大促", "https://example.com/sale", 1, "ad-autumn-sale"),
    ("carousel", "新品首发", "https://example.com/new", 2, "ad-new-arrivals"),
    ("sidebar", "订阅周刊", "/register", 1, "ad-newsletter"),
]


def seed_all(settings: Settings) -> None:
    from breakwater.accounts.models import Role, User
    from breakwater.accounts.services import create_user
    from breakwater.app import create_app
    from breakwater.extensions import db
    from breakwater.regions.services import load_seed

    app = create_app(settings)
    with app.app_context(), db.primary():  # check-then-insert: read the primary, not a replica
        session = db.session
        name = settings["EDITOR_NAME"]
        editor = session.scalars(select(User).where(User.name == name)).first()
        if editor is None:
            editor = create_user(session, name, settings["EDITOR_PASSWORD"], role=Role.EDITOR)
        load_seed(session)
        _content(app, session, editor)
    db.dispose()


def _images(app, session) -> dict[str, str]:
    """The seed's images, accepted like uploads: {sample name: canonical /media/ URL}."""
    from breakwater.media import samples
    from breakwater.media import services as media

    return {name: media.accept(session, app, samples.render(name), f"{name}.png")[0].url for name in samples.SAMPLES}


def _content(app, session, editor) -> None:
    from breakwater.ads.models import Ad, AdSlot
    from breakwater.common.times import utcnow
    from breakwater.content.models import Article, Category, Status
    from breakwater.content.rendering import render_markdown

    if session.scalar(select(func.count()).select_from(Category)):
        return
    images = _images(app, session)
    cats = {slug: Category(slug=slug, name=name, sort_order=order) for slug, name, order in CATEGORIES}
    session.add_all(cats.values())
    slots = {key: AdSlot(key=key, name=name) for key, name in SLOTS}
    session.add_all(slots.values())
    session.flush()
    now = utcnow()
    for i, (cat, slug, title, summary, body) in enumerate(ARTICLES):
        session.add(
            Article(
                title=title, slug=slug, summary=summary, body_md=body, body_html=render_markdown(body),
                category_id=cats[cat].id, status=Status.PUBLISHED, published_at=now - timedelta(hours=i),
                cover_url=images[f"cover-{cat}"],
                author_id=editor.id,
            )
        )  # fmt: skip
    for slot, title, link, order, image in ADS:
        session.add(
            Ad(slot_id=slots[slot].id, title=title, link=link, sort_order=order, enabled=True, image_url=images[image])
        )
    session.commit()
