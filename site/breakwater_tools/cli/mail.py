"""``breakwater mail ...``: what the local SMTP sink received."""

from __future__ import annotations

import json

import click

from breakwater.cli.common import load_settings


@click.group("mail")
def mail() -> None:
    """What the local SMTP sink received."""


@mail.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.option("--to", "to", default="", help="Only messages to this address.")
def mail_list(as_json: bool, to: str) -> None:
    """Every message the stack's SMTP sink stored under STATE_DIR/mail, oldest first."""
    from breakwater_tools.mail_sink import read_messages

    settings = load_settings()
    messages = [m for m in read_messages(settings.state_dir / "mail") if to in m["to"]]
    if as_json:
        click.echo(json.dumps(messages, indent=2, ensure_ascii=False))
        return
    if not messages:
        click.echo("no mail.")
    for m in messages:
        click.echo(f"{m['date']}  to {m['to']}  {m['subject']}  ({m['file']})")
