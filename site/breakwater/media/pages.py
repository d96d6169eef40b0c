"""The uploaded images' variants as static files beside the pages (content-hashed names, never purged)."""

from __future__ import annotations

from flask import Flask

from breakwater.media import variants
from breakwater.pages import registry


def _files(app: Flask) -> dict:
    return {
        url: (lambda p=path: (p.read_bytes(), ["media"])) for url, path in variants.all_files(variants.media_root(app))
    }


registry.register_files("media", variants.PREFIX, _files)
