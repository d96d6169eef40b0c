"""Image uploads: re-encoded variants on disk, served immutable by the origin and the edge; bad input
refused with nothing written; EXIF gone; an image in use cannot be deleted; slugs from Chinese titles."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from media_helpers import jpeg_with_gps

YEAR = "public, max-age=31536000, immutable"


def _files(settings) -> set[str]:
    media = Path(settings.media_dir)
    emitted = Path(settings["STATIC_DIR"]) / "media"
    return {f"m/{p.name}" for p in media.glob("*")} | {f"s/{p.name}" for p in emitted.glob("*")}


def _count(db) -> int:
    from sqlalchemy import func, select

    from breakwater.media.models import MediaImage

    with db.primary():
        count = db.session.scalar(select(func.count()).select_from(MediaImage))
        db.session.rollback()
        return count


def _upload(editor_api, data: bytes, name: str = "photo.jpg", ctype: str = "image/jpeg"):
    return editor_api("POST", "/media", files={"file": (name, data, ctype)})


def test_upload_emits_variants_served_immutable_by_origin_and_edge(editor_api, settings, origin, edge, http):
    source = jpeg_with_gps(1600, 1000, orientation=6)  # a phone photo held upright: stored sideways
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the GPS is really there

    response = _upload(editor_api, source, "IMG_0001.JPG")
    assert response.status_code == 201, response.text
    media = response.json()["media"]
    assert (media["width"], media["height"]) == (1000, 1600)  # turned upright, then the EXIF dropped
    assert media["widths"] == [320, 640, 1000]
    assert media["url"] == f"/media/{media['sha256'][:16]}-1000.jpg"
    assert len(media["variants"]) == 6

    static = Path(settings["STATIC_DIR"])
    for url in media["variants"]:
        for path in (Path(settings.media_dir) / url.removeprefix("/media/"), static / url.lstrip("/")):
            data = path.read_bytes()
            image = Image.open(io.BytesIO(data))
            assert image.format == ("WEBP" if url.endswith(".webp") else "JPEG")
            assert not image.getexif(), f"{path} keeps EXIF"
            assert b"Exif" not in data and b"GPS" not in data
    assert Image.open(static / media["url"].lstrip("/")).size == (1000, 1600)

    webp = media["variants"][0]
    at_origin = http.get(origin + webp, timeout=10)
    assert at_origin.status_code == 200
    assert at_origin.headers["Cache-Control"] == YEAR
    assert at_origin.headers["Content-Type"] == "image/webp"
    assert at_origin.headers["X-Origin-Cache"] == "STATIC"
    first = http.get(edge + webp, timeout=10)
    again = http.get(edge + webp, timeout=10)
    assert first.status_code == again.status_code == 200
    assert again.headers["Cache-Control"] == YEAR and again.headers["X-Edge-Cache"] == "HIT"
    assert again.content == at_origin.content == (static / webp.lstrip("/")).read_bytes()

    # Not emitted yet (or lost from static_build): the app serves the media folder's copy, same header.
    emitted = static / media["url"].lstrip("/")
    kept = emitted.read_bytes()
    emitted.unlink()
    try:
        fallback = http.get(origin + media["url"], timeout=10)
        assert fallback.status_code == 200 and fallback.headers["Cache-Control"] == YEAR
        assert fallback.content == (Path(settings.media_dir) / media["url"].removeprefix("/media/")).read_bytes()
    finally:
        emitted.write_bytes(kept)  # the manifest still lists it (tests/test_pages.py checks every file)

    same = _upload(editor_api, source, "copy.jpg")  # the same picture is the same image
    assert same.status_code == 200 and same.json()["media"]["id"] == media["id"]


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (random.randrange(256), 80, 40)).save(out, "JPEG")
    return out.getvalue()


BAD = {
    "polyglot": (lambda s: _jpeg() + b"<script>alert(document.cookie)</script>", "x.jpg", 400, "trailing_data"),
    "svg": (
        lambda s: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>',
        "x.svg",
        415,
        "unsupported_image",
    ),
    "bomb": (lambda s: _png((8000, 8000), "1"), "bomb.png", 413, "image_too_large"),  # 64 Mpx in 8 kB
    "too_big": (lambda s: b"\xff\xd8\xff" + b"\0" * s.int("MEDIA_MAX_BYTES"), "big.jpg", 413, "file_too_large"),
    "renamed_pdf": (lambda s: b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n", "scan.jpg", 415, None),
}


def test_bad_uploads_are_refused_with_nothing_written(editor_api, settings, db):
    before_files, before_rows = _files(settings), _count(db)
    answers, expected = {}, {}
    for case, (make, name, status, code) in BAD.items():
        response = _upload(editor_api, make(settings), name)
        error = response.json().get("error") or {}
        answers[case] = (response.status_code, error.get("code") if code else None, bool(error.get("message")))
        expected[case] = (status, code, True)
    assert answers == expected
    assert _files(settings) == before_files
    assert _count(db) == before_rows
    not_multipart = editor_api("POST", "/media", data=_jpeg(), headers={"Content-Type": "image/jpeg"})
    assert not_multipart.status_code == 415


def test_an_image_in_use_cannot_be_deleted(editor_api, settings, slug):
    media = _upload(editor_api, _jpeg(), "cover.jpg").json()["media"]
    article = editor_api(
        "POST",
        "/articles",
        json={"title": "封面", "slug": slug, "category": "news", "body": "x", "cover_url": media["url"]},
    ).json()["article"]
    listed = {m["id"]: m for m in editor_api("GET", "/media").json()["media"]}
    assert listed[media["id"]]["used_by"] == [{"kind": "article", "id": article["id"], "title": "封面"}]

    refused = editor_api("DELETE", f"/media/{media['id']}")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "media_in_use"
    assert (Path(settings.media_dir) / media["url"].removeprefix("/media/")).exists()

    editor_api("PATCH", f"/articles/{article['id']}", json={"cover_url": ""})
    assert editor_api("DELETE", f"/media/{media['id']}").status_code == 200
    assert not list(Path(settings.media_dir).glob(media["sha256"][:16] + "-*"))
    assert not list((Path(settings["STATIC_DIR"]) / "media").glob(media["sha256"][:16] + "-*"))
    assert editor_api("DELETE", f"/media/{media['id']}").status_code == 404


@pytest.mark.parametrize(
    ("title", "proposal"),
    [("用 GTID 读到自己的写入", "yong-gtid-du-dao-zi-ji-de-xie-ru"), ("Café 周末 2026!", "cafe-zhou-mo-2026")],
)
def test_slug_proposed_from_the_title(editor_api, title, proposal):
    answer = editor_api("GET", "/slug", params={"title": title}).json()
    assert answer == {"proposal": proposal, "slug": proposal, "valid": True, "available": True}
    taken = editor_api("GET", "/slug", params={"slug": "gtid-causal-reads"}).json()  # a seeded article
    assert taken["available"] is False
    seeded = editor_api("GET", "/slug", params={"title": "Breakwater launch"}).json()
    assert seeded["proposal"] == "breakwater-launch-2"  # taken by the seed: made unique
