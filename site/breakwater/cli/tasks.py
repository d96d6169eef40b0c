"""``breakwater tasks ...``: queues, tasks that failed for good, sending one again."""

from __future__ import annotations

import json

import click

from breakwater.cli.common import fail, load_settings


@click.group("tasks")
def tasks() -> None:
    """Background tasks: queues, tasks that failed for good, sending one again."""


@tasks.command("queues")
@click.option("--json", "as_json", is_flag=True)
def tasks_queues(as_json: bool) -> None:
    """Messages waiting and consumers per queue."""
    from breakwater.queues.depth import queue_depths

    try:
        rows = queue_depths(load_settings())
    except Exception as exc:
        fail(f"the broker did not answer: {exc}")
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
    from breakwater.app import create_app
    from breakwater.extensions import db as database
    from breakwater.queues import failures

    app = create_app(load_settings())
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
    from breakwater.app import create_app
    from breakwater.extensions import db as database
    from breakwater.queues import failures

    app = create_app(load_settings())
    with app.app_context(), database.primary():
        try:
            row = failures.retry(database.session, failed_id)
        except LookupError as exc:
            fail(str(exc))
        click.echo(f"sent {row.task} again as {row.retry_task_id} (queue {row.queue}).")
