"""Real browser: an editor uploads a cover image and sees it on the published page; an ad scheduled in
the site's time zone is stored in UTC."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from playwright.sync_api import expect

from media_helpers import jpeg_with_gps


def _login(page, origin, settings, next_path: str) -> None:
    page.goto(f"{origin}/login?next={next_path}")
    page.get_by_label("用户名").fill(settings["EDITOR_NAME"])
    page.get_by_label("密码").fill(settings["EDITOR_PASSWORD"])
    page.get_by_role("button", name="登录").click()


def test_editor_uploads_a_cover_and_the_published_page_shows_it(page, origin, settings, tmp_path):
    tag = uuid.uuid4().hex[:6]
    photo = tmp_path / "封面.jpg"
    photo.write_bytes(jpeg_with_gps(900, 600))
    _login(page, origin, settings, "/editor/articles/new")

    page.get_by_label("Title").fill(f"图片文章 {tag}")
    expect(page.get_by_label("Slug")).to_have_value(f"tu-pian-wen-zhang-{tag}")  # proposed as typed
    page.get_by_label("Category").select_option("tech")
    page.get_by_label("Body (Markdown)").fill("有图。")
    page.locator("[data-image-field] input[type=file]").set_input_files(str(photo))
    expect(page.get_by_label("Cover image")).to_have_value(re.compile(r"^/media/[0-9a-f]{16}-900\.jpg$"))
    expect(page.locator("[data-image-field] img[data-preview]")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.locator(f"tr[data-slug='tu-pian-wen-zhang-{tag}'] .status")).to_have_text("published")

    page.goto(f"{origin}/articles/tu-pian-wen-zhang-{tag}")
    cover = page.locator("img.cover")
    expect(cover).to_have_attribute("srcset", re.compile(r"-320\.jpg 320w, .*-640\.jpg 640w, .*-900\.jpg 900w"))
    expect(cover).to_have_attribute("width", "900")
    expect(cover).to_have_attribute("height", "600")
    page.wait_for_function("() => { const i = document.querySelector('img.cover'); return i.naturalWidth > 0 }")
    assert page.locator("picture source[type='image/webp']").count() == 1
    assert page.evaluate("document.querySelector('img.cover').currentSrc").startswith(f"{origin}/media/")
    listed = page.goto(f"{origin}/categories/tech")
    assert listed.ok
    thumb = page.locator(f"a[href='/articles/tu-pian-wen-zhang-{tag}'] img")
    expect(thumb).to_have_attribute("loading", "lazy")
    expect(thumb).to_have_attribute("sizes", "8rem")


def test_an_ad_scheduled_in_beijing_time_is_stored_in_utc(page, origin, settings, db):
    from sqlalchemy import select

    from breakwater.ads.models import Ad

    title = "定时广告 " + uuid.uuid4().hex[:6]
    _login(page, origin, settings, "/editor/ads")
    new_ad = page.locator("form[action$='/editor/ads']")
    expect(new_ad.get_by_label("Starts (Asia/Shanghai)")).to_have_attribute("type", "datetime-local")
    new_ad.get_by_label("Slot").select_option("sidebar")
    new_ad.get_by_label("Title").fill(title)
    new_ad.get_by_label("Link").fill("/promo")
    new_ad.get_by_label("Starts").fill("2030-06-01T10:00")
    new_ad.get_by_label("Ends").fill("2030-06-01T12:30")
    new_ad.get_by_role("button", name="Create ad").click()

    row = page.locator("tr[data-ad]").filter(has=page.locator(f"input[value='{title}']"))
    expect(row.get_by_label("Starts")).to_have_value("2030-06-01T10:00")  # read back in Beijing time
    with db.primary():
        ad = db.session.scalars(select(Ad).where(Ad.title == title)).one()
        assert (ad.starts_at, ad.ends_at) == (datetime(2030, 6, 1, 2, 0), datetime(2030, 6, 1, 4, 30))
        db.session.rollback()
