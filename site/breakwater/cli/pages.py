"""``breakwater pages ...``: build the static pages for the CDN, show recent builds."""

from __future__ import annotations

from pathlib import Path

import click

from breakwater import extensions
from breakwater.cli.common import fail, load_settings


@click.group("pages")
def pages() -> None:
    """Static pages for the CDN (emitted into BREAKWATER_STATIC_DIR)."""


@pages.command("build")
@click.option("--dry-run", is_flag=True, help="List what would be written or removed; change nothing.")
@click.option("--out", type=click.Path(file_okay=False), help="Folder to write into (default BREAKWATER_STATIC_DIR).")
def pages_build(dry_run: bool, out: str | None) -> None:
    """Render every public page; write only those whose bytes changed, remove pages that are gone."""
    from breakwater.app import create_app
    from breakwater.pages.builder import Builder, BuildError

    app = create_app(load_settings())
    builder = Builder(app, Path(out) if out else None)
    try:
        with click.progressbar(length=0, label="pages", file=click.get_text_stream("stderr")) as bar:

            def step(i: int, url: str, total: int) -> None:
                bar.length = total
                bar.update(1, url[:60])

            report = builder.build_all(dry_run=dry_run, progress=step)
    except BuildError as exc:
        fail(f"{exc}. The files already in place were left as they were.")
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

    from breakwater.app import create_app
    from breakwater.pages.tasks import history

    app = create_app(load_settings())
    for b in history(extensions.broker(app), limit):
        at = datetime.datetime.fromtimestamp(b["at"]).isoformat(timespec="seconds")
        click.echo(
            f"{at}  {','.join(b['namespaces'])[:40]:<40} written {len(b['written'])}, "
            f"removed {len(b['removed'])}, {b['seconds']:.2f}s"
        )
