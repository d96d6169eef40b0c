"""Import every feature's models so ``Base.metadata`` is complete (Alembic, tests)."""


def import_all() -> None:
    from breakwater.accounts import models as _accounts  # noqa: F401
