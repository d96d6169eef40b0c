"""``breakwater regions ...``: checks on region data."""

from __future__ import annotations

import json

import click


@click.group("regions")
def group() -> None:
    """Region data: stored codes that no longer resolve."""


@group.command("orphans")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
@click.option("--also", multiple=True, metavar="TABLE.COLUMN", help="Check this column too (repeatable).")
def orphans(as_json: bool, also: tuple[str, ...]) -> None:
    """List stored region codes (registered columns) that are obsolete or unknown."""
    from breakwater.app import create_app
    from breakwater.extensions import db
    from breakwater.models import import_all
    from breakwater.regions.references import REFERENCES, find_orphans
    from breakwater.settings import Settings

    import_all()  # features register their region columns next to their models
    columns = list(REFERENCES)
    for spec in also:
        table, _, column = spec.partition(".")
        if not table or not column:
            raise click.BadParameter(f"{spec!r} is not TABLE.COLUMN", param_hint="--also")
        columns.append((table, column))
    app = create_app(Settings.load())
    with app.app_context(), db.primary():
        found = find_orphans(db.session.connection(), columns)
    db.dispose()
    if as_json:
        for o in found:
            click.echo(json.dumps(o.to_json(), ensure_ascii=False, default=str))
        return
    for o in found:
        key = ",".join(f"{k}={v}" for k, v in o.key.items())
        click.echo(f"{o.table}.{o.column}  {key:<20} {o.code:<10} {o.status:<9} {o.name or '-'}")
    checked = ", ".join(f"{t}.{c}" for t, c in columns) or "none registered"
    click.echo(f"{len(found)} reference(s) to obsolete or unknown region codes (checked: {checked})")
