"""The ``breakwater`` command (a Flask CLI group), one module per command group.

``db`` (migrations, seed), ``user``, ``pages``, ``tasks``, ``flash`` and ``regions`` live here. The local
stack's groups (``stack``, ``cluster``, ``mail`` and ``db promote|rejoin``) come from the tooling package
through the ``breakwater.commands`` entry point, so the app never imports its tooling and an install without
the tooling (the app's image) simply has no ``stack`` command.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click
from flask.cli import FlaskGroup, NoAppException

from breakwater.cli import db, flash, pages, regions, tasks, users


def _create_app():
    from breakwater.app import create_app

    try:
        return create_app()
    except (RuntimeError, ValueError) as exc:  # settings missing or wrong: Flask prints it as one line
        raise NoAppException(str(exc)) from None


class BreakwaterGroup(FlaskGroup):
    """Flask's group, plus the groups each ``breakwater.commands`` entry point registers (``register(main)``),
    added the first time a command is looked up: not at import, so the tooling may import this package's
    modules without a circle."""

    _plugins_added = False

    def _add_plugins(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        for entry in entry_points(group="breakwater.commands"):
            try:
                register = entry.load()
            except ModuleNotFoundError:
                continue  # installed without its extra (the app's image has no local-stack tooling)
            register(self)

    def get_command(self, ctx: click.Context, name: str):
        self._add_plugins()
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugins()
        return super().list_commands(ctx)


@click.group(cls=BreakwaterGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Breakwater: run the stack, migrate the database, manage users."""


for _group in (db.db, users.user, pages.pages, tasks.tasks, flash.group, regions.group):
    main.add_command(_group)
