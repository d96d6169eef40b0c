"""The OpenAPI description (breakwater/openapi/openapi.yaml) stays true to the app.

* it is a valid OpenAPI 3.1 document, served at /api/openapi.json; /api/docs and its assets are served;
* it describes exactly the app's /api/ routes and /healthz, with their methods (a new route without a
  description fails, and so does a description of a route that is gone);
* schemathesis calls every operation through the real origin as three callers (anonymous, an editor
  with a bearer token, a signed-in buyer): no 5xx, and every answer's status, content type, headers
  and body match the description. ``BREAKWATER_FUZZ_EXAMPLES`` (``make fuzz``) runs it longer.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from breakwater.openapi import description
from visitors import visitor

SCHEMA = schemathesis.openapi.from_dict(description())
EXAMPLES = int(os.environ.get("BREAKWATER_FUZZ_EXAMPLES", "4"))
FULL = EXAMPLES > 6  # `make fuzz`: also schemathesis' coverage phase (boundary and negative values)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=EXAMPLES,
    phases=[Phase.explicit, Phase.generate] if FULL else [Phase.generate],
    deadline=None,
    database=None,
    derandomize=not FULL,  # the same cases every run of `make test`; `make fuzz` explores
    suppress_health_check=list(HealthCheck),
)
PARAM = re.compile(r"<(?:[^<>]*:)?(\w+)>")
METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_description_is_valid_openapi_and_served(origin):
    validate(description())
    response = requests.get(f"{origin}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == description()


def test_every_api_route_is_described_and_nothing_else(app):
    routes = {
        (PARAM.sub(r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") or rule.rule == "/healthz"  # JSON too (its status for everybody)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {
        (path, method) for path, item in description()["paths"].items() for method in item if method in METHODS
    }
    missing, gone = sorted(routes - described), sorted(described - routes)
    assert (missing, gone) == ([], []), "(routes not in openapi/openapi.yaml, described routes the app lacks)"


def test_the_docs_page_and_its_assets_are_served_by_the_origin(origin):
    page = requests.get(f"{origin}/api/docs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "https://" not in page.text  # nothing from a third party
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert [a for a in assets if not a.startswith("/assets/") and a != "/api/openapi.json"] == []
    assets = [a for a in assets if a.startswith("/assets/")]
    types = {"js": ("application/javascript", "text/javascript"), "css": ("text/css",), "svg": ("image/svg+xml",)}
    for url in assets:
        response = requests.get(origin + url, timeout=10)
        assert response.status_code == 200, url
        assert response.headers.get("X-Origin-Cache") == "STATIC", f"{url} not served as a static file"
        assert response.headers["Content-Type"].startswith(types[url.rsplit(".", 1)[1]]), url
    assert len(assets) == 4


def test_the_docs_page_shows_every_operation_in_a_real_browser(origin, page):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)  # CSP refusals too
    outside, failed = [], []
    page.on("request", lambda req: None if req.url.startswith(origin) else outside.append(req.url))
    page.on("response", lambda resp: failed.append(resp.url) if resp.status >= 400 else None)
    page.goto(f"{origin}/api/docs")
    operations = sum(1 for item in description()["paths"].values() for m in item if m in METHODS)
    page.locator(".opblock").nth(operations - 1).wait_for()
    assert page.locator(".opblock").count() == operations
    assert page.locator(".opblock-summary-path", has_text="/api/flash/{sale_id}/orders").count() == 1
    assert (failed, errors, outside) == ([], [], [])


def test_inputs_schemathesis_found_crashing_the_api_are_clear_400s_and_409s(origin, editor_api, unique_name):
    """Each of these was a 500 (the database refusing a value, or Python failing to encode it)."""
    assert editor_api("POST", "/slots", json={"key": unique_name, "name": "s"}).status_code == 201
    first = editor_api("POST", "/flash/products", json={"name": unique_name, "price_cents": 1}).json()["product"]
    too_long = "/" + "a" * 600
    cases = [
        ("/ads", {"slot": unique_name, "title": "t", "link": too_long}, 400, "field_too_long"),
        ("/ads", {"slot": unique_name, "title": "t", "link": "/", "image_url": too_long}, 400, "field_too_long"),
        ("/ads", {"slot": unique_name, "title": "t", "link": "/", "starts_at": "0001-01-01T00:00+01:00"}, 400,
         "invalid_datetime"),
        ("/flash/products", {"name": unique_name, "price_cents": 1, "image_url": too_long}, 400, "field_too_long"),
        ("/flash/products", {"name": unique_name, "price_cents": 1, "description": "长" * 20000}, 400,
         "field_too_long"),
        ("/flash/sales", {"product_id": first["id"], "stock": 1, "starts_at": "2026-01-01T00:00:00Z",
                          "ends_at": "9999-12-31T23:00:00-05:00"}, 400, "invalid_datetime"),
        ("/preview", {"body": "x\ud800"}, 400, "invalid_json"),
    ]  # fmt: skip
    for path, body, status, code in cases:
        raw = json.dumps(body)  # ensure_ascii: the lone surrogate goes out as the escape \ud800
        response = editor_api("POST", path, data=raw, headers={"Content-Type": "application/json"})
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), (path, body)
    with visitor() as client:
        login = client.post(f"{origin}/api/auth/login", data=b'{"name": "a\\ud800", "password": "p"}',
                            headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
    assert (login.status_code, login.json()["error"]["code"]) == (400, "invalid_json")
    assert editor_api("POST", "/preview", json={"body": "x 😀"}).status_code == 200  # a surrogate pair is fine
    other = editor_api("POST", "/flash/products", json={"name": unique_name + "-2", "price_cents": 1}).json()["product"]
    rename = editor_api("PATCH", f"/flash/products/{other['id']}", json={"name": first["name"]})
    assert (rename.status_code, rename.json()["error"]["code"]) == (409, "product_exists")


# ------------------------------------------------------------------ schemathesis
@pytest.fixture(scope="module")
def scratch(app, origin, editor_token):
    """Things the editor's fuzzing may change or delete (ids of real rows, never the seed's), and a buyer.

    Path ids the fuzzer draws are mapped onto these, so a PATCH or DELETE lands on a row this module made
    (or on one that does not exist) and never on content another test relies on."""
    from breakwater.accounts.models import Role, User
    from breakwater.extensions import db

    api = visitor()  # the editor, from an address of its own
    api.headers["Authorization"] = f"Bearer {editor_token}"
    tag = uuid.uuid4().hex[:8]

    def post(path, **kwargs):
        response = api.post(f"{origin}/api/editor{path}", timeout=15, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    ids = {}
    ids["article_id"] = [
        post("/articles", json={"title": f"fuzz {tag} {i}", "slug": f"fuzz-{tag}-{i}", "body": "x", "category": cat})[
            "article"
        ]["id"]
        for i, cat in enumerate(_categories(origin)[:2])
    ]
    slot = post("/slots", json={"key": f"fuzz_{tag}", "name": "fuzz"})["slot"]["key"]
    ids["ad_id"] = [post("/ads", json={"slot": slot, "title": "fuzz", "link": "/"})["ad"]["id"] for _ in range(2)]
    product = post("/flash/products", json={"name": f"fuzz {tag}", "price_cents": 100})["product"]["id"]
    ids["product_id"] = [product]
    now = datetime.now(UTC)
    window = {"starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat()}
    sale = post("/flash/sales", json={"product_id": product, "stock": 1000, "limit": 100, **window})["sale"]
    ids["sale_id"] = [sale["id"]]
    image = io.BytesIO()
    Image.new("RGB", (40, 30), (uuid.uuid4().int % 256, 90, 30)).save(image, "PNG")
    ids["media_id"] = [post("/media", files={"file": ("fuzz.png", image.getvalue(), "image/png")})["media"]["id"]]
    with app.app_context(), db.primary():
        buyer = User(name=f"fuzz-buyer-{tag}", password_hash="x", role=Role.VISITOR)
        db.session.add(buyer)
        db.session.commit()
        cookie = app.session_interface.get_signing_serializer(app).dumps({"uid": buyer.id, "_permanent": True})
    api.close()
    return ids, cookie


def _categories(origin) -> list[str]:
    home = requests.get(f"{origin}/api/home", timeout=10).json()
    return [c["slug"] for c in home["categories"]]


def _run(case, origin, scratch, keep_causal_token=False, **kwargs):
    ids, _cookie = scratch
    if not keep_causal_token and case.headers:
        # Drawn tokens are never ones the site signed: every such case would stop at 400 invalid_causal_token.
        case.headers.pop("X-Causal-Token", None)
    for name, value in list((case.path_parameters or {}).items()):
        # Two in three drawn ids (0 among them: the coverage phase's favourite) become a scratch row; the
        # rest stay as drawn (mostly: not found).
        if name in ids and isinstance(value, int) and value % 3 != 2:
            case.path_parameters[name] = ids[name][value % len(ids[name])]
    # Each case a visitor of its own (a fresh source address): the per-address limits (Nginx's login and
    # write limits, the app's) keep their defaults and never answer for an earlier case.
    with visitor() as session:
        case.call_and_validate(base_url=origin, session=session, checks=CHECKS, timeout=30, **kwargs)


# One pytest item per operation, parametrized here rather than by ``SCHEMA.parametrize()``: under
# pytest-xdist (``make test`` runs ``-n 2``) that decorator's items collapse into one, and only the
# first operation was fuzzed.
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def _fuzz(operation, run) -> None:
    @FUZZ
    @given(case=operation.as_strategy())
    def examples(case) -> None:
        run(case)

    examples()


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_fuzz_anonymous(operation, origin, scratch):
    _fuzz(operation, lambda case: _run(case, origin, scratch, keep_causal_token=True))


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_fuzz_editor_with_a_bearer_token(operation, origin, scratch, editor_token):
    headers = {"Authorization": f"Bearer {editor_token}"}
    _fuzz(operation, lambda case: _run(case, origin, scratch, headers=headers))


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_fuzz_signed_in_buyer(operation, origin, scratch):
    _fuzz(operation, lambda case: _run(case, origin, scratch, cookies={"bw_session": scratch[1]}))
