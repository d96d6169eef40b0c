"""The ``breakwater`` command (a Flask CLI group), one module per command group.

``db`` (migrations, seed), ``user``, ``pages``, ``tasks``, ``flash`` and ``regions`` live here. The local
stack's groups (``stack``, ``cluster``, ``mail`` and ``db promote|rejoin``) come from the tooling package
through the ``breakwater.commands`` entry point, so the app never imports its tooling and an install without
the tooling (the app's image) simply has no ``stack`` command.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click
from flask.cli import FlaskGroup

from breakwater.cli import db, flash, pages, regions, tasks, users


def _create_app():
    from breakwater.app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Breakwater: run the stack, migrate the database, manage users."""


for _group in (db.db, users.user, pages.pages, tasks.tasks, flash.group, regions.group):
    main.add_command(_group)


def _add_plugin_commands() -> None:
    """Each ``breakwater.commands`` entry point is a ``register(main)`` that adds its groups."""
    for entry in entry_points(group="breakwater.commands"):
        try:
            register = entry.load()
        except ModuleNotFoundError:
            continue  # installed without its extra (the app's image has no local-stack tooling)
        register(main)


_add_plugin_commands()
