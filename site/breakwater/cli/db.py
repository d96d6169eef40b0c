"""``breakwater db ...``: migrations and seed data, run on the primary."""

from __future__ import annotations

import click

from breakwater.cli.common import load_settings


@click.group("db")
def db() -> None:
    """Migrations and seed data (run on the primary); promoting a replica, rejoining a fenced node."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from breakwater.database.migrations import upgrade

    upgrade(load_settings(), revision)
    click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. -1 or base)."""
    from breakwater.database.migrations import downgrade

    downgrade(load_settings(), revision)
    click.echo(f"database downgraded to {revision}")


@db.command("current")
def db_current() -> None:
    """Print the applied migration revision."""
    from breakwater.database.migrations import current

    click.echo(current(load_settings()) or "(none)")


@db.command("seed")
def db_seed() -> None:
    """Load the seed data (idempotent)."""
    from breakwater.cli.seed import seed_all

    seed_all(load_settings())
    click.echo("seed data loaded")
