"""Phones first (issue 21, point 5): every kind of page at 390 px (a phone) and 1366 px (a laptop) fits the
screen's width, and its primary action can be reached without zooming.

One browser for the module (the session's chromium), one anonymous and one signed-in (editor) context per
width; every case is a new page in one of them. "No horizontal overflow": ``scrollWidth <= innerWidth`` of
the document. "Visible without zooming": once scrolled to, the action lies wholly inside the viewport.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from playwright.sync_api import expect

from browser import DEFAULT_TIMEOUT_MS
from routing_helpers import wait_for
from visitors import visitor

WIDTHS = {"phone": (390, 844), "laptop": (1366, 800)}


@pytest.fixture(scope="module")
def targets(origin, editor_token) -> dict[str, str]:
    editor = visitor()  # the editor API from an address of its own, as conftest's editor_api
    editor.headers["Authorization"] = f"Bearer {editor_token}"

    def editor_api(method: str, path: str, **kwargs):
        return editor.request(method, f"{origin}/api/editor{path}", timeout=15, **kwargs)

    home = requests.get(f"{origin}/api/home", timeout=10).json()
    category = next(c for c in home["categories"] if c["articles"])
    name = "响应式秒杀 " + uuid.uuid4().hex[:6]
    product = editor_api("POST", "/flash/products", json={"name": name, "price_cents": 1})
    now = datetime.now(UTC)
    sale = editor_api(
        "POST", "/flash/sales",
        json={"product_id": product.json()["product"]["id"], "stock": 5,
              "starts_at": (now - timedelta(seconds=5)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()},
    ).json()["sale"]  # fmt: skip
    wait_for(lambda: f'data-sale="{sale["id"]}"' in requests.get(f"{origin}/", timeout=10).text, timeout=20,
             what="the sale on the static homepage")  # fmt: skip
    return {
        "article": f"/articles/{category['articles'][0]['slug']}",
        "category": f"/categories/{category['slug']}",
        "sale": f"/flash/{sale['id']}",
    }


@pytest.fixture(scope="module", params=list(WIDTHS), ids=list(WIDTHS))
def contexts(request, browser, origin, settings):
    width, height = WIDTHS[request.param]
    anonymous = browser.new_context(viewport={"width": width, "height": height})
    editor = browser.new_context(viewport={"width": width, "height": height})
    for context in (anonymous, editor):
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    login = editor.new_page()
    login.goto(f"{origin}/login")
    login.get_by_label("用户名").fill(settings["EDITOR_NAME"])
    login.get_by_label("密码").fill(settings["EDITOR_PASSWORD"])
    login.get_by_role("button", name="登录").click()
    expect(login).not_to_have_url(f"{origin}/login")
    login.close()
    yield {"anonymous": anonymous, "editor": editor}
    anonymous.close()
    editor.close()


# page -> (who, path or a target's name, the primary action)
CASES = {
    "homepage": ("anonymous", "/", lambda p: p.locator("[data-sale] a").first),
    "article": ("anonymous", "article", lambda p: p.locator("main h1").first),
    "category": ("anonymous", "category", lambda p: p.locator(".articles .card a").first),
    "sale": ("editor", "sale", lambda p: p.get_by_role("button", name="立即抢购")),
    "regions": ("anonymous", "/regions", lambda p: p.get_by_label("省份")),
    "login": ("anonymous", "/login", lambda p: p.get_by_role("button", name="登录")),
    "editor": ("editor", "/editor/articles/new", lambda p: p.get_by_role("button", name="Save draft")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_page_fits_and_its_primary_action_is_in_view(case, contexts, targets, origin):
    who, where, action = CASES[case]
    page = contexts[who].new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(origin + targets.get(where, where))
        primary = action(page)
        expect(primary).to_be_visible()
        if case == "sale":
            expect(primary).to_be_enabled()  # the state file has come: the page is complete
        page.wait_for_load_state("load")
        fit = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert fit[0] <= fit[1], f"{case}: {fit[0]} px wide content in a {fit[1]} px window"
        primary.scroll_into_view_if_needed()
        box = primary.bounding_box()
        inner = page.evaluate("[window.innerWidth, window.innerHeight]")
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= inner[0] + 0.5, (case, box, inner)
        assert box["y"] >= 0 and box["y"] + box["height"] <= inner[1] + 0.5, (case, box, inner)
        # Nothing in the header is cut off: its parts lie within the width (the categories scroll inside theirs).
        header = page.evaluate(
            """() => [...document.querySelectorAll('header.top > *')].map(e => {
                 const r = e.getBoundingClientRect(); return [e.className, r.left, r.right]; })"""
        )
        assert all(left >= 0 and right <= inner[0] + 0.5 for _c, left, right in header), header
        assert errors == []
    finally:
        page.close()


def test_carousel_dots_are_round_on_a_phone(contexts, origin):
    page = contexts["anonymous"].new_page()
    try:
        page.goto(f"{origin}/")
        dots = page.locator("[data-carousel] [data-dot]")
        expect(dots.first).to_be_visible()
        for box in (dots.nth(i).bounding_box() for i in range(dots.count())):
            assert box is not None and abs(box["width"] - box["height"]) < 0.5, box
        radius = dots.first.evaluate("d => getComputedStyle(d).borderRadius")
        assert radius == "50%", radius
    finally:
        page.close()


def test_header_navigation_scrolls_instead_of_cutting_off(contexts, origin):
    page = contexts["anonymous"].new_page()
    try:
        page.goto(f"{origin}/")
        nav = page.locator("nav.cats")
        overflow = nav.evaluate("n => getComputedStyle(n).overflowX")
        assert overflow in ("auto", "scroll"), overflow
        width = page.evaluate("window.innerWidth")
        if width <= 720:  # a row of its own, not squeezed between the brand and the account links
            assert nav.evaluate("n => n.clientWidth") >= 0.85 * width
        last = nav.locator("a").last  # 地区, the far end: reachable by scrolling the navigation itself
        last.scroll_into_view_if_needed()
        box, width = last.bounding_box(), page.evaluate("window.innerWidth")
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, box
    finally:
        page.close()
