"""Visitor JSON API and pages: regions, homepage, articles; caching headers; clean errors."""

from __future__ import annotations

import pytest


def get(http, origin, path, **kw):
    return http.get(f"{origin}{path}", timeout=10, **kw)


def test_provinces_and_cascade(http, origin):
    provinces = get(http, origin, "/api/regions").json()["regions"]
    assert len(provinces) == 34
    assert {"code": "110000", "name": "北京市", "level": "province"} in provinces
    guangdong = get(http, origin, "/api/regions/440000").json()
    assert guangdong["name"] == "广东省" and guangdong["parent"] is None
    assert {"code": "440300", "name": "深圳市", "level": "city"} in guangdong["children"]
    shenzhen = get(http, origin, "/api/regions/440300").json()
    assert shenzhen["parent"] == "440000"
    assert {"code": "440305", "name": "南山区", "level": "district"} in shenzhen["children"]
    assert get(http, origin, "/api/regions/440305001").json()["children"] == []  # a street is a leaf


@pytest.mark.parametrize("code", ["44", "abcdef", "4403051", "44030x"])
def test_malformed_region_code_is_400(http, origin, code):
    resp = get(http, origin, f"/api/regions/{code}")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_region_code"


def test_unknown_region_is_404(http, origin):
    resp = get(http, origin, "/api/regions/999999")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "region_not_found"


def test_second_read_is_a_cache_hit(http, origin):
    get(http, origin, "/api/regions/510000")
    again = get(http, origin, "/api/regions/510000")
    assert again.headers["X-Cache"] == "hit"
    assert again.headers["Content-Type"].startswith("application/json")


def test_home_has_slots_and_categories(http, origin):
    home = get(http, origin, "/api/home").json()
    assert {"carousel", "sidebar", "category_news"} <= home["slots"].keys()
    assert [c["slug"] for c in home["categories"]] == ["news", "tech", "life"]
    assert any(c["articles"] for c in home["categories"])


def test_article_list_and_bad_paging(http, origin):
    listing = get(http, origin, "/api/articles?category=news").json()
    assert listing["category"]["slug"] == "news" and listing["page"] == 1
    for bad in ("0", "-1", "abc", "99999999"):
        resp = get(http, origin, f"/api/articles?page={bad}")
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_page"
    assert get(http, origin, "/api/articles?category=nope").status_code == 404
    assert get(http, origin, "/api/articles?category=NOT_A_SLUG!").status_code == 400


def test_article_and_pages(http, origin):
    article = get(http, origin, "/api/articles/breakwater-launch").json()
    assert article["title"] == "Breakwater 上线" and "<h2>" in article["body_html"]
    assert get(http, origin, "/api/articles/no-such-article").status_code == 404
    page = get(http, origin, "/articles/breakwater-launch")
    assert page.status_code == 200 and "Breakwater 上线" in page.text
    missing = get(http, origin, "/articles/no-such-article")
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    category = get(http, origin, "/categories/news")
    assert category.status_code == 200 and "breakwater-launch" in category.text
    assert get(http, origin, "/categories/news?page=x").status_code == 404


def test_anonymous_pages_set_no_cookie(http, origin):
    for path in ("/", "/articles/breakwater-launch", "/categories/news", "/regions"):
        resp = get(http, origin, path)
        assert resp.status_code == 200
        assert "Set-Cookie" not in resp.headers, path
