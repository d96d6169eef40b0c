"""The ``breakwater`` command: stack, db and user management (Flask CLI underneath)."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

import click
from flask.cli import FlaskGroup


def _create_app():
    from breakwater import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Breakwater: run the stack, migrate the database, manage users."""


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------- db
@main.group(cls=click.Group)
def db() -> None:
    """Migrations and seed data (run on the primary); promoting a replica, rejoining a fenced node."""


def _settings():
    from breakwater.settings import Settings

    return Settings.load()


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from breakwater.database.migrations import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. -1 or base)."""
    from breakwater.database.migrations import downgrade

    downgrade(_settings(), revision)
    click.echo(f"database downgraded to {revision}")


@db.command("current")
def db_current() -> None:
    """Print the applied migration revision."""
    from breakwater.database.migrations import current

    click.echo(current(_settings()) or "(none)")


@db.command("seed")
def db_seed() -> None:
    """Load the seed data (idempotent)."""
    from breakwater.database.seed import seed_all

    seed_all(_settings())
    click.echo("seed data loaded")


# ---------------------------------------------------------------------------------- users
@main.group(cls=click.Group)
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

    app = _create_app()
    with app.app_context(), database.primary():
        account = database.session.scalars(select(User).where(User.name == name)).first()
        if account is None:
            _fail(f"there is no user named {name!r}; create one with `breakwater user create-editor {name}`.")
        if not account.is_editor:
            _fail(f"{name!r} is not an editor; only editors get API tokens.")
        click.echo(issue_token(database.session, account, label))


@user.command("create-editor")
@click.argument("name")
@click.option("--password", help="Password to set; one is generated and printed when omitted.")
def create_editor(name: str, password: str | None) -> None:
    """Create an editor account NAME."""
    from flask import current_app

    from breakwater.accounts.models import Role
    from breakwater.accounts.services import create_user
    from breakwater.errors import ApiError
    from breakwater.extensions import db as database

    generated = password is None
    password = password or secrets.token_urlsafe(12)
    app = _create_app()
    with app.app_context():
        try:
            created = create_user(
                database.session, name, password, role=Role.EDITOR, max_name=current_app.config["MAX_NAME_LENGTH"]
            )
        except ApiError as exc:
            if exc.code == "name_taken":
                _fail(f"a user named {name!r} already exists; pick another name.")
            _fail(f"{exc.message} Pass a valid value and retry.")
    click.echo(f"created editor {created.name!r}" + (f" with password {password}" if generated else ""))


# ---------------------------------------------------------------------------------- feature packages' commands
def _add_feature_commands() -> None:
    from breakwater.flash.cli import group as flash_group
    from breakwater.regions.cli import group as regions_group
    from breakwater.stack.cluster_cli import cluster
    from breakwater.stack.failover_cli import COMMANDS as db_failover
    from breakwater.stack.stack_cli import stack

    main.add_command(stack)
    main.add_command(regions_group)
    main.add_command(flash_group)
    main.add_command(cluster)
    for command in db_failover:
        db.add_command(command)


_add_feature_commands()


# ---------------------------------------------------------------------------------- pages
@main.group(cls=click.Group)
def pages() -> None:
    """Static pages for the CDN (emitted into BREAKWATER_STATIC_DIR)."""


@pages.command("build")
@click.option("--dry-run", is_flag=True, help="List what would be written or removed; change nothing.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder to write into (default BREAKWATER_STATIC_DIR).")
def pages_build(dry_run: bool, out: str | None) -> None:
    """Render every public page; write only those whose bytes changed, remove pages that are gone."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from breakwater import create_app
    from breakwater.pages.builder import Builder, BuildError

    app = create_app(_settings())
    builder = Builder(app, Path(out) if out else None)
    console = Console(stderr=True)
    try:
        with Progress(
            TextColumn("[bold]pages"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.description}"), console=console, transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("", total=None)

            def step(i: int, url: str, total: int) -> None:
                progress.update(task, completed=i + 1, total=total, description=url[:60])

            report = builder.build_all(dry_run=dry_run, progress=step)
    except BuildError as exc:
        _fail(f"{exc}. The files already in place were left as they were.")
    verb = "would write" if dry_run else "written"
    if dry_run:
        for url in report.written:
            click.echo(f"  write   {url}")
        for url in report.removed:
            click.echo(f"  remove  {url}")
    click.echo(
        f"{verb}: {len(report.written)}, unchanged: {report.unchanged}, "
        f"{'would remove' if dry_run else 'removed'}: {len(report.removed)}, seconds: {report.seconds:.2f}"
    )


@pages.command("history")
@click.option("--limit", default=20, show_default=True, help="How many of the latest builds.")
def pages_history(limit: int) -> None:
    """The latest incremental builds: when, what changed them, what was written and removed."""
    import datetime

    from breakwater import create_app
    from breakwater.pages.tasks import history

    app = create_app(_settings())
    for b in history(app.extensions["breakwater.redis"], limit):
        at = datetime.datetime.fromtimestamp(b["at"]).isoformat(timespec="seconds")
        click.echo(
            f"{at}  {','.join(b['namespaces'])[:40]:<40} written {len(b['written'])}, "
            f"removed {len(b['removed'])}, {b['seconds']:.2f}s"
        )


# ---------------------------------------------------------------------------------- tasks
@main.group(cls=click.Group)
def tasks() -> None:
    """Background tasks: queues, tasks that failed for good, sending one again."""


@tasks.command("queues")
@click.option("--json", "as_json", is_flag=True)
def tasks_queues(as_json: bool) -> None:
    """Messages waiting and consumers per queue."""
    from breakwater.queues.depth import queue_depths

    try:
        rows = queue_depths(_settings())
    except Exception as exc:
        _fail(f"the broker did not answer: {exc}")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            click.echo(f"{r['queue']:<10} waiting={r['messages']:<6} consumers={r['consumers']}")


@tasks.command("failed")
@click.option("--limit", default=50, show_default=True)
@click.option("--all", "include_retried", is_flag=True, help="Also those already sent again.")
@click.option("--json", "as_json", is_flag=True)
def tasks_failed(limit: int, include_retried: bool, as_json: bool) -> None:
    """Tasks that finally failed: task, arguments, error, attempts, time (newest first)."""
    from breakwater import create_app
    from breakwater.extensions import db as database
    from breakwater.queues import failures

    app = create_app(_settings())
    with app.app_context(), database.primary():
        rows = [r.to_json() for r in failures.listing(database.session, limit, include_retried)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no failed tasks.")
    for r in rows:
        retried = f"  (sent again {r['retried_at']} as {r['retry_task_id']})" if r["retried_at"] else ""
        click.echo(
            f"#{r['id']:<5} {r['failed_at']}  {r['task']} [{r['queue']}] attempts={r['attempts']}{retried}\n"
            f"       args={r['args']} kwargs={r['kwargs']}\n       error: {r['error'][:300]}"
        )


@tasks.command("retry")
@click.argument("failed_id", type=int)
def tasks_retry(failed_id: int) -> None:
    """Send a failed task again (same task, arguments and queue; a new task id)."""
    from breakwater import create_app
    from breakwater.extensions import db as database
    from breakwater.queues import failures

    app = create_app(_settings())
    with app.app_context(), database.primary():
        try:
            row = failures.retry(database.session, failed_id)
        except LookupError as exc:
            _fail(str(exc))
        click.echo(f"sent {row.task} again as {row.retry_task_id} (queue {row.queue}).")


# ---------------------------------------------------------------------------------- mail
@main.group(cls=click.Group)
def mail() -> None:
    """What the local SMTP sink received."""


@mail.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--to", "to", default="", help="Only messages to this address.")
def mail_list(as_json: bool, to: str) -> None:
    """Every message the stack's SMTP sink stored under STATE_DIR/mail, oldest first."""
    from breakwater.mail.sink import read_messages

    settings = _settings()
    messages = [m for m in read_messages(settings.state_dir / "mail") if to in m["to"]]
    if as_json:
        click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    if not messages:
        click.echo("no mail.")
    for m in messages:
        click.echo(f"{m['date']}  to {m['to']}  {m['subject']}  ({m['file']})")
