"""The JSON API's OpenAPI 3.1 description (``/api/openapi.json``) and its page for people (``/api/docs``).

The description is the checked-in ``openapi.yaml`` beside this file, written by hand next to the code
rather than generated from it: the views validate their input by hand (``breakwater.web.json_api.json_body`` and
the services raise :class:`~breakwater.web.errors.ApiError`), so there are no schema objects a generator
could read, and annotating nine blueprints would spread the description over files other work
changes. Instead two tests keep the file true (tests/test_openapi.py): every ``/api/`` route of the
URL map (and its methods) must be described and nothing else, and schemathesis calls every operation
against the real stack and checks each response's status, content type and body against it.

To keep the YAML readable, :func:`expand` fills in what every operation of a kind shares, from three
extension keys (all removed from the served document):

* ``x-auth: editor | buyer | session``: the security requirement and its 401/403 answers (editors:
  a bearer token, or the session cookie plus ``X-CSRFToken`` on writes);
* ``x-errors: {status: [code, ...]}``: the operation's own error answers; each becomes a response whose
  ``error.code`` is one of those values (the automatic answers below are merged in);
* ``x-db: false``: the operation never touches the database (no 503).

Every path gets the optional ``X-Causal-Token`` request header, every 2xx answer that response header.

Automatic answers: 400 ``invalid_causal_token`` (any request may carry ``X-Causal-Token``), 404
``not_found`` when the path has parameters (a value the route does not match), 503 for the database,
and for writes 415/400 (JSON bodies), 413 (bodies over 1 MiB) and 429 (the origin's per-address write limit).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

import yaml
from flask import Blueprint, Flask, Response, render_template, request

SOURCE = Path(__file__).with_name("openapi.yaml")
ERROR = "#/components/schemas/Error"
RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}
CAUSAL_PARAM = "#/components/parameters/CausalToken"
CAUSAL_HEADER = "#/components/headers/X-Causal-Token"
STATUS_TEXT = {
    400: "The request is invalid.",
    401: "Not authenticated, or the credentials are wrong.",
    403: "Authenticated, but not allowed.",
    404: "No such resource.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    415: "The body is not in the media type this operation accepts.",
    422: "Unprocessable: the request cannot be applied as sent.",
    429: "Too many requests; wait `Retry-After` seconds.",
    503: "A backing service is unavailable or saturated; retry in a moment.",
}
WRITES = {"post", "put", "patch", "delete"}
METHODS = WRITES | {"get", "head", "options"}
EDITOR = [{"bearerAuth": []}, {"sessionCookie": []}]
EDITOR_WRITE = [{"bearerAuth": []}, {"sessionCookie": [], "csrfToken": []}]


def _error_response(status: int, codes: list[str]) -> dict:
    listed = ", ".join(f"`{code}`" for code in sorted(set(codes)))
    response = {
        "description": f"{STATUS_TEXT.get(status, 'Error.')} `error.code`: {listed}.",
        "content": {
            "application/json": {
                "schema": {
                    "allOf": [
                        {"$ref": ERROR},
                        {"properties": {"error": {"properties": {"code": {"enum": sorted(set(codes))}}}}},
                    ]
                }
            }
        },
    }
    if status == 429:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def _automatic(path: str, method: str, op: dict) -> dict[int, list[str]]:
    errors: dict[int, list[str]] = {400: ["invalid_causal_token"]}
    if "{" in path:
        errors[404] = ["not_found"]
    if op.get("x-db", True):
        errors[503] = ["database_unavailable", "database_busy", "primary_unavailable"]
    auth = op.get("x-auth")
    if auth == "editor":
        errors[401] = ["not_authenticated", "invalid_token"]
        errors[403] = ["not_editor"]
        if method in WRITES:
            errors[400].append("csrf_failed")
    elif auth in ("buyer", "session"):
        errors[401] = ["not_authenticated"]
    if method in WRITES:
        errors[429] = ["rate_limited"]
        errors[413] = ["request_entity_too_large"]
        errors.setdefault(415, []).append("unsupported_media_type")
        if "application/json" in op.get("requestBody", {}).get("content", {}):
            errors[400].append("invalid_json")
    return errors


def expand(raw: dict) -> dict:
    """The served description: ``raw`` with the ``x-auth``/``x-errors``/``x-db`` shorthands written out."""
    spec = copy.deepcopy(raw)
    for path, item in spec.get("paths", {}).items():
        item.setdefault("parameters", []).insert(0, {"$ref": CAUSAL_PARAM})
        for method, op in item.items():
            if method not in METHODS:
                continue
            errors = _automatic(path, method, op)
            for status, codes in (op.pop("x-errors", None) or {}).items():
                errors.setdefault(int(status), []).extend(codes)
            auth = op.pop("x-auth", None)
            op.pop("x-db", None)
            if auth == "editor":
                op["security"] = EDITOR_WRITE if method in WRITES else EDITOR
            elif auth in ("buyer", "session"):
                op["security"] = [{"sessionCookie": []}]
            responses = op.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith("2"):
                    response.setdefault("headers", {}).setdefault("X-Causal-Token", {"$ref": CAUSAL_HEADER})
            for status in sorted(errors):
                if str(status) not in responses:
                    responses[str(status)] = _error_response(status, errors[status])
    return spec


@cache
def description() -> dict:
    """The expanded description (read once per process)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: start-up stays quick
    return expand(yaml.load(SOURCE.read_text(encoding="utf-8"), Loader=loader))


@cache
def _description_bytes() -> bytes:
    return json.dumps(description(), ensure_ascii=False, indent=1).encode()


bp = Blueprint("openapi", __name__)


@bp.get("/api/openapi.json")
def openapi_json() -> Response:
    response = Response(_description_bytes(), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/api/docs")
def docs() -> Response:
    from breakwater.web.assets import asset_url

    html = render_template(
        "openapi/docs.html",
        title=description()["info"]["title"],
        spec_url="/api/openapi.json",
        script=asset_url("vendor/swagger-ui/swagger-ui-bundle.js"),
        style=asset_url("vendor/swagger-ui/swagger-ui.css"),
        init=asset_url("api-docs.js"),
        icon=asset_url("img/logo.svg"),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "public, max-age=300"
    # Swagger UI sets inline style attributes; scripts stay same-origin only, and no image or call
    # leaves the site (its default validator badge is turned off in api-docs.js).
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'"
    )
    return response


def init_openapi(app: Flask) -> None:
    app.register_blueprint(bp)
    description()  # a broken description fails at start-up, not on the first request
