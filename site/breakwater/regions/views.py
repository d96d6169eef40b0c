from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("regions", __name__)


@bp.get("/regions")
def picker_demo():
    """The address picker on its own; the flash-sale order form reuses the same widget."""
    return render_template("regions/picker.html")
