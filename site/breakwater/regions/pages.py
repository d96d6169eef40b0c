"""The region picker's page and its content-hashed data files (one per parent region) as static files."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from breakwater.pages import registry
from breakwater.regions import cascade


@registry.register
def regions_page(session: Session) -> list[str]:
    return ["/regions"]


@registry.register_affected("regions")
def regions_changed(session: Session, namespace: str, manifest: dict) -> tuple[list[str], set[str]]:
    return ["/regions"], {"regions"}


def _files(app: Flask) -> dict:
    files = cascade.region_files()["files"]
    return {cascade.PREFIX + name: (lambda t=text: (t.encode(), ["regions"])) for name, text in files.items()}


registry.register_files("regions", cascade.PREFIX, _files)
