from __future__ import annotations

from flask import Blueprint, render_template

from breakwater.regions.cascade import root_url
from breakwater.web.pages import page_response

bp = Blueprint("regions", __name__)


@bp.get("/regions")
def picker_demo():
    """The address picker on its own; the flash-sale order form reuses the same widget."""
    return page_response(render_template("regions/picker.html", regions_root=root_url()), "hit", ["regions"])
