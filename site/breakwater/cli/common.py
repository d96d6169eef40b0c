"""What every command module shares: the settings loader and the one-sentence failure."""

from __future__ import annotations

import sys

import click

from breakwater.settings import Settings


def fail(message: str) -> None:
    """Print one plain sentence (with the fix) on stderr and exit 1."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def load_settings() -> Settings:
    return Settings.load()
