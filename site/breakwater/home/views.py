from __future__ import annotations

from flask import Blueprint, render_template

from breakwater.cache.http import cached_data
from breakwater.extensions import db
from breakwater.home import services

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    data, status = cached_data("home", "home", services.DEPS, lambda: services.home_data(db.session), services.SOFT_TTL)
    return render_template("home/index.html", home=data), 200, {"X-Cache": status}
