"""Seed data loaded by `make run` and the test stack. Idempotent: safe on every start."""

from __future__ import annotations

from sqlalchemy import select

from breakwater.settings import Settings


def seed_all(settings: Settings) -> None:
    from breakwater import create_app
    from breakwater.accounts.models import Role, User
    from breakwater.accounts.services import create_user
    from breakwater.extensions import db

    app = create_app(settings)
    with app.app_context(), db.primary():  # check-then-insert: read the primary, not a replica
        name = settings["EDITOR_NAME"]
        if db.session.scalars(select(User).where(User.name == name)).first() is None:
            create_user(db.session, name, settings["EDITOR_PASSWORD"], role=Role.EDITOR)
    db.dispose()
