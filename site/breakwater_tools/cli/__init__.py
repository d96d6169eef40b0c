"""The tooling's commands, added to ``breakwater`` through the ``breakwater.commands`` entry point
(pyproject.toml): ``stack``, ``cluster``, ``mail`` and ``db promote|rejoin|watch``, one module per group."""

from __future__ import annotations

import click

from breakwater_tools.cli import cluster, failover, mail, stack


def register(main: click.Group) -> None:
    for group in (stack.stack, cluster.cluster, mail.mail):
        main.add_command(group)
    for command in failover.COMMANDS:
        main.commands["db"].add_command(command)
