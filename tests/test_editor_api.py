"""Editor API: publishing shows up at once, every rejection writes nothing, nothing injected runs."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from sqlalchemy import text

from routing_helpers import wait_for
from visitors import visitor

ARTICLE = {"title": "Test article", "summary": "A summary", "category": "tech", "body": "Hello **world**"}


def count(db, table: str, where: str = "1=1", **params) -> int:
    with db.primary_engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), params).scalar_one()


def test_publish_is_visible_on_the_next_request(editor_api, http, origin, slug):
    http.get(f"{origin}/api/home", timeout=10)  # warm the cache first
    resp = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, "publish": True})
    assert resp.status_code == 201, resp.text
    article = http.get(f"{origin}/api/articles/{slug}", timeout=10)
    assert article.status_code == 200 and article.json()["title"] == "Test article"
    home = http.get(f"{origin}/api/home", timeout=10)
    assert home.headers["X-Cache"] == "miss"
    tech = next(c for c in home.json()["categories"] if c["slug"] == "tech")
    assert slug in [a["slug"] for a in tech["articles"]]
    # The publisher (sending its causal token back) reads the homepage through the app at once;
    # an anonymous visitor gets the static homepage, rebuilt by the worker moments later.
    token = {"X-Causal-Token": resp.headers["X-Causal-Token"]}
    assert slug in http.get(f"{origin}/", headers=token, timeout=10).text
    wait_for(lambda: slug in requests.get(f"{origin}/", timeout=10).text, timeout=15, what="the static rebuild")


def test_unpublish_update_and_delete(editor_api, http, origin, slug):
    created = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, "publish": True}).json()["article"]
    assert http.get(f"{origin}/api/articles/{slug}", timeout=10).status_code == 200
    assert editor_api("POST", f"/articles/{created['id']}/unpublish").json()["article"]["status"] == "draft"
    assert http.get(f"{origin}/api/articles/{slug}", timeout=10).status_code == 404
    editor_api("POST", f"/articles/{created['id']}/publish")
    renamed = slug + "-v2"
    resp = editor_api("PATCH", f"/articles/{created['id']}", json={"slug": renamed, "title": "Renamed"})
    assert resp.status_code == 200, resp.text
    assert http.get(f"{origin}/api/articles/{slug}", timeout=10).status_code == 404
    assert http.get(f"{origin}/api/articles/{renamed}", timeout=10).json()["title"] == "Renamed"
    assert editor_api("DELETE", f"/articles/{created['id']}").status_code == 200
    assert http.get(f"{origin}/api/articles/{renamed}", timeout=10).status_code == 404
    actions = [(e["action"], e["key"]) for e in editor_api("GET", "/history").json()["events"]]
    assert ("delete", renamed) in actions and ("unpublish", slug) in actions


def test_duplicate_slug_is_409_and_writes_nothing(editor_api, db, slug):
    assert editor_api("POST", "/articles", json={**ARTICLE, "slug": slug}).status_code == 201
    before = (count(db, "articles"), count(db, "publish_events"))
    resp = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "slug_taken"
    assert (count(db, "articles"), count(db, "publish_events")) == before


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"title": ""}, 400, "missing_field"),
        ({"title": "x" * 201}, 400, "field_too_long"),
        ({"slug": "Not A Slug"}, 400, "invalid_slug"),
        ({"category": "no-such-category"}, 404, "category_not_found"),
        ({"body": 42}, 400, "invalid_field"),
        ({"cover_url": "javascript:alert(1)"}, 400, "invalid_url"),
        ({"body": "x" * 200_001}, 413, "body_too_large"),
    ],
)
def test_bad_article_input_writes_nothing(editor_api, db, slug, change, status, code):
    before = count(db, "articles")
    resp = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, **change})
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    assert count(db, "articles") == before


def test_ad_window_and_order(editor_api, http, origin, db):
    title = "Ad " + uuid.uuid4().hex[:6]
    before = count(db, "ads")
    bad = editor_api(
        "POST", "/ads", json={"slot": "sidebar", "title": title, "link": "https://example.com",
                              "starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"},
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_window"
    assert editor_api("POST", "/ads", json={"slot": "nope", "title": title, "link": "/x"}).status_code == 404
    assert editor_api("POST", "/ads", json={"slot": "sidebar", "title": title, "link": "ftp://x"}).status_code == 400
    assert count(db, "ads") == before

    future = editor_api(
        "POST", "/ads", json={"slot": "sidebar", "title": title + " later", "link": "/later",
                              "starts_at": "2099-01-01T00:00:00Z"},
    ).json()["ad"]  # fmt: skip
    first = editor_api("POST", "/ads", json={"slot": "sidebar", "title": title, "link": "/now", "sort_order": -5})
    assert first.status_code == 201
    sidebar = http.get(f"{origin}/api/home", timeout=10).json()["slots"]["sidebar"]["ads"]
    titles = [a["title"] for a in sidebar]
    assert titles[0] == title, "lowest sort_order first"
    assert title + " later" not in titles, "an ad outside its window is not shown"
    editor_api("PATCH", f"/ads/{future['id']}", json={"starts_at": None})
    titles = [a["title"] for a in http.get(f"{origin}/api/home", timeout=10).json()["slots"]["sidebar"]["ads"]]
    assert title + " later" in titles
    for ad_id in (future["id"], first.json()["ad"]["id"]):
        assert editor_api("DELETE", f"/ads/{ad_id}").status_code == 200


def test_injected_markup_never_runs(editor_api, http, origin, slug):
    body = "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3))"
    resp = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, "title": "<script>alert(4)</script>",
                                                 "body": body, "publish": True})  # fmt: skip
    html = resp.json()["article"]["body_html"]
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    page = http.get(f"{origin}/articles/{slug}", timeout=10).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(4)" in page
    home = http.get(f"{origin}/", timeout=10).text
    assert "<script>alert(4)" not in home
    ad = editor_api("POST", "/ads", json={"slot": "carousel", "title": "<img src=x onerror=alert(5)>", "link": "/a"})
    assert "<img src=x onerror" not in http.get(f"{origin}/", timeout=10).text
    editor_api("DELETE", f"/ads/{ad.json()['ad']['id']}")


def test_who_may_edit(origin, http, unique_name, db):
    anonymous = http.get(f"{origin}/api/editor/articles", timeout=10)
    assert anonymous.status_code == 401
    bad_token = http.get(f"{origin}/api/editor/articles", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad_token.status_code == 401 and bad_token.json()["error"]["code"] == "invalid_token"
    http.post(f"{origin}/api/auth/register", json={"name": unique_name, "password": "long enough"}, timeout=10)
    visitor = http.get(f"{origin}/api/editor/articles", timeout=10)
    assert visitor.status_code == 403 and visitor.json()["error"]["code"] == "not_editor"
    before = count(db, "articles")
    assert http.post(f"{origin}/api/editor/articles", json={**ARTICLE, "slug": "x-" + unique_name}).status_code == 403
    assert count(db, "articles") == before
    page = http.get(f"{origin}/editor", timeout=10)
    assert page.status_code == 403


def test_session_writes_need_the_csrf_token(origin, settings, db, slug):
    with visitor() as s:  # the editor signed in from an address of its own
        login = s.post(f"{origin}/api/auth/login", timeout=10,
                       json={"name": settings["EDITOR_NAME"], "password": settings["EDITOR_PASSWORD"]})  # fmt: skip
        assert login.status_code == 200
        before = count(db, "articles")
        no_token = s.post(f"{origin}/api/editor/articles", json={**ARTICLE, "slug": slug}, timeout=10)
        assert no_token.status_code == 400 and no_token.json()["error"]["code"] == "csrf_failed"
        wrong = s.post(f"{origin}/api/editor/articles", json={**ARTICLE, "slug": slug},
                       headers={"X-CSRFToken": "forged"}, timeout=10)  # fmt: skip
        assert wrong.status_code == 400
        assert count(db, "articles") == before
        token = re.search(r'name="csrf-token" content="([^"]+)"', s.get(f"{origin}/editor", timeout=10).text).group(1)
        ok = s.post(f"{origin}/api/editor/articles", json={**ARTICLE, "slug": slug},
                    headers={"X-CSRFToken": token}, timeout=10)  # fmt: skip
        assert ok.status_code == 201
        # The editor reads the draft on the very next request (causal read of its own write).
        listed = s.get(f"{origin}/api/editor/articles", timeout=10).json()["articles"]
        assert listed[0]["slug"] == slug
