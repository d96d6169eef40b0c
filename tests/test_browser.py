"""Real browser (Debian chromium via Playwright): the address cascade and an editor's publish."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect


def test_address_picker_cascade(page, origin):
    page.goto(f"{origin}/regions")
    province = page.get_by_label("省份")
    city = page.get_by_label("城市")
    district = page.get_by_label("区县")
    street = page.get_by_label("街道/乡镇")
    code = page.locator("input[name='region_code']")
    expect(province.locator("option[value='440000']")).to_have_count(1)
    expect(city).to_be_disabled()
    expect(street).to_be_hidden()

    province.select_option("440000")
    expect(city).to_be_enabled()
    expect(city.locator("option[value='440300']")).to_have_text("深圳市")
    expect(district).to_be_disabled()

    city.select_option("440300")
    expect(district).to_be_enabled()
    expect(district.locator("option[value='440305']")).to_have_text("南山区")
    expect(street).to_be_hidden()
    district.select_option("440305")
    expect(street).to_be_visible()
    expect(street.locator("option[value='440305001']")).to_have_text("南头街道")
    street.select_option("440305001")
    expect(page.get_by_test_id("picked")).to_have_text("广东省 / 深圳市 / 南山区 / 南头街道")
    expect(code).to_have_value("440305001")

    # A city without districts (东莞市): its towns come right after the city, the district select hides.
    city.select_option("441900")
    expect(street).to_be_visible()
    expect(district).to_be_hidden()
    street.select_option("441900003")
    expect(page.get_by_test_id("picked")).to_have_text("广东省 / 东莞市 / 东城街道")
    expect(code).to_have_value("441900003")

    # Changing the province clears the lower levels again.
    province.select_option("110000")
    expect(district).to_be_disabled()
    expect(street).to_be_hidden()
    expect(code).to_have_value("110000")  # the deepest choice so far; the server checks it is fine enough
    expect(city.locator("option[value='110100']")).to_have_count(1)


def test_editor_logs_in_publishes_and_homepage_shows_it(page, origin, settings):
    title = "浏览器发布 " + uuid.uuid4().hex[:6]
    slug = "browser-" + uuid.uuid4().hex[:8]
    page.goto(f"{origin}/editor")  # not logged in: sent to the login form
    expect(page).to_have_url(f"{origin}/login?next=/editor")
    page.get_by_label("用户名").fill(settings["EDITOR_NAME"])
    page.get_by_label("密码").fill(settings["EDITOR_PASSWORD"])
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="Articles")).to_be_visible()

    page.get_by_role("link", name="New article").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Slug").fill(slug)
    page.get_by_label("Category").select_option("life")
    page.get_by_label("Body (Markdown)").fill("第一段 **加粗**\n\n<script>window.pwned = 1</script>")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview").locator("strong")).to_have_text("加粗")
    page.get_by_role("button", name="Publish").click()

    expect(page.locator(f"tr[data-slug='{slug}'] .status")).to_have_text("published")
    page.goto(f"{origin}/")
    link = page.get_by_role("link", name=title)
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    assert page.evaluate("window.pwned") is None  # the injected script never ran


def test_editor_manages_an_ad_in_the_browser(page, origin, settings, http):
    title = "广告 " + uuid.uuid4().hex[:6]
    page.goto(f"{origin}/login?next=/editor/ads")
    page.get_by_label("用户名").fill(settings["EDITOR_NAME"])
    page.get_by_label("密码").fill(settings["EDITOR_PASSWORD"])
    page.get_by_role("button", name="登录").click()
    new_ad = page.locator("form[action$='/editor/ads']")
    new_ad.get_by_label("Slot").select_option("sidebar")
    new_ad.get_by_label("Title").fill(title)
    new_ad.get_by_label("Link").fill("/promo")
    new_ad.get_by_label("Order").fill("-50")
    new_ad.get_by_role("button", name="Create ad").click()
    row = page.locator("tr[data-ad]").filter(has=page.locator(f"input[value='{title}']"))
    expect(row).to_contain_text("live")
    sidebar = [a["title"] for a in http.get(f"{origin}/api/home", timeout=10).json()["slots"]["sidebar"]["ads"]]
    assert sidebar[0] == title

    row.get_by_label("Ends").fill("2000-01-01T00:00")
    row.get_by_label("Starts").fill("1999-01-01T00:00")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-ad]").filter(has=page.locator(f"input[value='{title}']"))).to_contain_text("not shown")
    sidebar = [a["title"] for a in http.get(f"{origin}/api/home", timeout=10).json()["slots"]["sidebar"]["ads"]]
    assert title not in sidebar
    page.locator("tr[data-ad]").filter(has=page.locator(f"input[value='{title}']")).get_by_role(
        "button", name="Delete"
    ).click()
    expect(page.locator(f"input[value='{title}']")).to_have_count(0)


def test_static_homepage_in_the_browser_with_the_account_menu_from_the_api(page, origin, settings, http):
    """The emitted homepage: images load, the carousel turns, and a signed-in visitor sees their name
    (filled in by site.js from /api/auth/me) although the page's HTML is the same for everyone."""
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/auth/me" in r.url else None)
    page.goto(f"{origin}/")
    expect(page.get_by_role("link", name="登录")).to_be_visible()
    assert api_calls == [], "an anonymous view makes no API call"
    carousel = page.locator("[data-carousel]")
    expect(carousel.locator(".slide")).to_have_count(2)
    widths = page.eval_on_selector_all("img", "imgs => imgs.filter(i => i.loading !== 'lazy').map(i => i.naturalWidth)")
    assert widths and all(w > 0 for w in widths), widths
    expect(carousel.locator(".slide.active")).to_have_count(1)
    first = carousel.locator(".slide.active").get_attribute("data-ad")
    carousel.locator("[data-dot='1']").click()
    expect(carousel.locator(".slide.active")).not_to_have_attribute("data-ad", first)

    page.goto(f"{origin}/login")
    page.get_by_label("用户名").fill(settings["EDITOR_NAME"])
    page.get_by_label("密码").fill(settings["EDITOR_PASSWORD"])
    page.get_by_role("button", name="登录").click()
    page.goto(f"{origin}/")
    expect(page.get_by_test_id("who")).to_have_text(settings["EDITOR_NAME"])
    expect(page.get_by_role("link", name="登录")).to_have_count(0)
    assert page.content().count(settings["EDITOR_NAME"]) >= 1
    anonymous = http.get(f"{origin}/", timeout=10).text
    assert settings["EDITOR_NAME"] not in anonymous.replace("editor/", "")  # the HTML itself names nobody
    page.get_by_role("button", name="退出").click()
    page.goto(f"{origin}/")
    expect(page.get_by_role("link", name="登录")).to_be_visible()


def test_a_buyer_registers_and_buys_on_the_sale_page(page, origin, editor_api):
    """The editor sets up a sale through the API; a visitor registers, picks the address with the
    region cascade on the (static) sale page, buys, and sees the confirmation."""
    from datetime import UTC, datetime, timedelta

    product = editor_api(
        "POST", "/flash/products", json={"name": "浏览器秒杀 " + uuid.uuid4().hex[:6], "price_cents": 1990}
    )
    now = datetime.now(UTC)
    sale = editor_api(
        "POST", "/flash/sales",
        json={"product_id": product.json()["product"]["id"], "stock": 3,
              "starts_at": (now - timedelta(seconds=5)).isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat()},
    ).json()["sale"]  # fmt: skip
    page.goto(f"{origin}/register")
    page.get_by_label("用户名").fill("buyer" + uuid.uuid4().hex[:8])
    page.get_by_label("密码").fill("long enough password")
    page.get_by_role("button", name="注册").click()
    page.goto(f"{origin}/flash/{sale['id']}")
    expect(page.get_by_role("heading", name=sale["product"]["name"])).to_be_visible()
    expect(page.locator("[data-state-label]")).to_have_text("抢购中")
    expect(page.locator("[data-stock]")).to_have_text("3")
    page.get_by_label("省份").select_option("110000")
    page.get_by_label("城市").select_option("110100")
    page.get_by_label("区县").select_option("110101")
    page.get_by_label("详细地址").fill("东长安街 1 号")
    page.get_by_label("收货人").fill("李四")
    page.get_by_label("手机号").fill("13900139000")
    page.get_by_role("button", name="立即抢购").click()
    expect(page.locator("[data-order-status]")).to_contain_text("抢购成功", timeout=30_000)
