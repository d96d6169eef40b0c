"""Import every feature's models so ``Base.metadata`` is complete (Alembic, tests)."""


def import_all() -> None:
    from breakwater.accounts import models as _accounts  # noqa: F401
    from breakwater.ads import models as _ads  # noqa: F401
    from breakwater.content import models as _content  # noqa: F401
    from breakwater.flash import models as _flash  # noqa: F401
    from breakwater.media import models as _media  # noqa: F401
    from breakwater.queues import models as _queues  # noqa: F401
    from breakwater.regions import models as _regions  # noqa: F401
