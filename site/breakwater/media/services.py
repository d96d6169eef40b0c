"""Accepting, listing and deleting images; where an image is used; lookups for templates.

Order of an upload: size check, decode and re-encode (:mod:`.processing`), then the variant files
(atomic, in the media folder), then the row. Nothing is written before the bytes are known to be an
image, and a failed insert removes the files it wrote unless another row owns the same hash.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from breakwater import extensions
from breakwater.common.errors import ApiError
from breakwater.media import variants
from breakwater.media.models import NAME_HASH, MediaImage
from breakwater.media.processing import MediaError, decode, variant_widths


def _settings(app: Flask):
    return extensions.settings(app)


def accept(session: Session, app: Flask, data: bytes, original_name: str) -> tuple[MediaImage, bool]:
    """(the image, True if new). Raises ApiError 400/413/415 with nothing written."""
    s = _settings(app)
    if len(data) > s.int("MEDIA_MAX_BYTES"):
        raise ApiError(413, "file_too_large", f"The file is larger than {s.int('MEDIA_MAX_BYTES')} bytes.")
    if not data:
        raise ApiError(400, "empty_file", "The file is empty.")
    try:
        master = decode(data, s.int("MEDIA_MAX_PIXELS"))
    except MediaError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    existing = session.scalars(select(MediaImage).where(MediaImage.sha256 == master.sha256)).first()
    if existing is not None:
        return existing, False
    widths = variant_widths(master.width, [int(w) for w in s.list("MEDIA_WIDTHS")])
    root = variants.media_root(app)
    key = master.sha256[:NAME_HASH]
    names = variants.write_variants(root, key, master, widths)
    image = MediaImage(
        sha256=master.sha256, width=master.width, height=master.height, bytes=len(data),
        original_name=original_name[:255], widths=",".join(map(str, widths)),
    )  # fmt: skip
    session.add(image)
    try:
        session.commit()
    except IntegrityError:  # the same image uploaded at the same moment: the other row owns the files
        session.rollback()
        with _primary():
            other = session.scalars(select(MediaImage).where(MediaImage.sha256 == master.sha256)).first()
        if other is None:
            variants.remove_variants(root, names)
            raise
        return other, False
    except BaseException:
        session.rollback()
        variants.remove_variants(root, names)
        raise
    variants.emit(app, names)
    return image, True


def _primary():
    from breakwater.extensions import db

    return db.primary()


def usage(session: Session, image: MediaImage) -> list[dict]:
    """Every article, ad and product whose image field (or article body) refers to this image."""
    from breakwater.ads.models import Ad
    from breakwater.content.models import Article
    from breakwater.flash.models import Product

    prefix = f"{variants.PREFIX}{image.key}-"
    used = []
    for article in session.scalars(
        select(Article).where(or_(Article.cover_url.startswith(prefix), Article.body_md.contains(prefix)))
    ):
        used.append({"kind": "article", "id": article.id, "title": article.title})
    for ad in session.scalars(select(Ad).where(Ad.image_url.startswith(prefix))):
        used.append({"kind": "ad", "id": ad.id, "title": ad.title})
    for product in session.scalars(select(Product).where(Product.image_url.startswith(prefix))):
        used.append({"kind": "product", "id": product.id, "title": product.name})
    return used


def to_json(image: MediaImage, used: list[dict] | None = None) -> dict:
    body = {
        "id": image.id, "sha256": image.sha256, "url": image.url, "width": image.width, "height": image.height,
        "bytes": image.bytes, "original_name": image.original_name, "widths": image.width_list,
        "variants": [variants.PREFIX + n for n in image.variant_names()],
        "created_at": image.created_at.isoformat(timespec="seconds") + "Z" if image.created_at else None,
    }  # fmt: skip
    if used is not None:
        body["used_by"] = used
    return body


def library(session: Session, limit: int = 200) -> list[tuple[MediaImage, list[dict]]]:
    rows = session.scalars(select(MediaImage).order_by(MediaImage.id.desc()).limit(limit))
    return [(image, usage(session, image)) for image in rows]


def get(session: Session, image_id: int) -> MediaImage:
    image = session.get(MediaImage, image_id)
    if image is None:
        raise ApiError(404, "media_not_found", f"There is no image {image_id}.")
    return image


def remove(session: Session, app: Flask, image: MediaImage) -> None:
    """Delete an unused image: the row (checked under the primary), then its files."""
    used = usage(session, image)
    if used:
        names = ", ".join(f"{u['kind']} {u['title']!r}" for u in used[:5])
        raise ApiError(409, "media_in_use", f"The image is still used by {names}.", used_by=used)
    names = image.variant_names()
    session.execute(delete(MediaImage).where(MediaImage.id == image.id))
    session.commit()
    _known.pop(image.key, None)
    variants.remove_variants(variants.media_root(app), names)
    variants.withdraw(app, names)


_known: dict[str, tuple[int, int, tuple[int, ...]]] = {}


def _lookup(key: str) -> tuple[int, int, tuple[int, ...]] | None:
    info = _known.get(key)
    if info is None:
        from breakwater.extensions import db

        image = db.session.scalars(select(MediaImage).where(MediaImage.sha256.startswith(key))).first()
        if image is None:
            return None  # not remembered: it may be there on the next request
        if len(_known) > 4096:
            _known.clear()
        info = _known[key] = (image.width, image.height, tuple(image.width_list))
    return info


def resolve(url: str) -> tuple[str, int, int, tuple[int, ...]] | None:
    """(key, width, height, variant widths) of a ``/media/<key>-<w>.jpg`` URL, remembered per process: an
    image's variants never change under its name."""
    if not url or not url.startswith(variants.PREFIX):
        return None
    match = variants.NAME_RE.match(url.removeprefix(variants.PREFIX))
    if not match:
        return None
    info = _lookup(match["key"])
    return (match["key"], *info) if info else None
