"""``breakwater user ...``: editors and their API tokens."""

from __future__ import annotations

import secrets

import click

from breakwater.app import create_app
from breakwater.cli.common import fail, load_settings


@click.group("user")
def user() -> None:
    """User accounts."""


@user.command("token")
@click.argument("name")
@click.option("--label", default="cli", help="A note to recognise the token by.")
def user_token(name: str, label: str) -> None:
    """Issue a bearer token for the editor API to editor NAME (printed once)."""
    from sqlalchemy import select

    from breakwater.accounts.models import User
    from breakwater.editor.auth import issue_token
    from breakwater.extensions import db as database

    app = create_app(load_settings())
    with app.app_context(), database.primary():
        account = database.session.scalars(select(User).where(User.name == name)).first()
        if account is None:
            fail(f"there is no user named {name!r}; create one with `breakwater user create-editor {name}`.")
        if not account.is_editor:
            fail(f"{name!r} is not an editor; only editors get API tokens.")
        click.echo(issue_token(database.session, account, label))


@user.command("create-editor")
@click.argument("name")
@click.option("--password", help="Password to set; one is generated and printed when omitted.")
def create_editor(name: str, password: str | None) -> None:
    """Create an editor account NAME."""
    from flask import current_app

    from breakwater.accounts.models import Role
    from breakwater.accounts.services import create_user
    from breakwater.common.errors import ApiError
    from breakwater.extensions import db as database

    generated = password is None
    password = password or secrets.token_urlsafe(12)
    app = create_app(load_settings())
    with app.app_context():
        try:
            created = create_user(
                database.session, name, password, role=Role.EDITOR, max_name=current_app.config["MAX_NAME_LENGTH"]
            )
        except ApiError as exc:
            if exc.code == "name_taken":
                fail(f"a user named {name!r} already exists; pick another name.")
            fail(f"{exc.message} Pass a valid value and retry.")
    click.echo(f"created editor {created.name!r}" + (f" with password {password}" if generated else ""))
