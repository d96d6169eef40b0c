"""The flash sale (抢购): stock N sells exactly N, at most the limit per buyer, nothing accepted is lost.

Layers, upstream first: the static product page on the CDN (:mod:`.views`), the one-second cacheable
``GET /api/flash/<id>``, Nginx ``limit_req``, a per-process sold-out flag (:mod:`.soldout`), the
per-buyer rate limit, the Idempotency-Key, the Redis gate (:mod:`.gate`, one Lua script), then the
``orders`` queue writing on the primary with an optimistic lock (:mod:`.orders`, :mod:`.tasks`), and
the reconciler that repairs the gate and re-sends lost writes.
"""

from __future__ import annotations

from flask import Flask

from breakwater import extensions


def init_flash(app: Flask) -> None:
    from breakwater.flash import api, editor_api, editor_views, pages, views  # noqa: F401  (pages registers)
    from breakwater.flash.gate import Gate
    from breakwater.flash.soldout import SoldOutFlags

    settings = extensions.settings(app)
    path = settings["FLASH_PURCHASE_PATH"].strip().lower()
    if path not in ("gate", "database"):
        raise ValueError(
            f"BREAKWATER_FLASH_PURCHASE_PATH={settings['FLASH_PURCHASE_PATH']!r} must be gate or database "
            "(database only to compare the two in make bench-flash); unset it for the gate."
        )
    app.extensions[extensions.PURCHASE_PATH] = path
    app.extensions[extensions.FLASH_GATE] = Gate(extensions.broker(app))
    app.extensions[extensions.SOLDOUT] = SoldOutFlags(settings.redis_url)
    from breakwater.extensions import csrf

    for bp in (api.bp, editor_api.bp):
        csrf.exempt(bp)
        app.register_blueprint(bp)
    app.register_blueprint(views.bp)
    extensions.after_invalidate(app).append(views.sales_changed)
    app.register_blueprint(editor_views.bp)
    import breakwater.flash.tasks  # noqa: F401  (registers the tasks)
