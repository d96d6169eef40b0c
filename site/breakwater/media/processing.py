"""Decode an upload with Pillow and re-encode it: the only way bytes from an editor reach visitors.

The format is whatever Pillow decodes with the four allowed decoders (JPEG, PNG, WebP, GIF), never the
file name or the client's Content-Type: an SVG, a PDF renamed ``.jpg`` or HTML is a 415. A file with
bytes after the image's own end (a JPEG with a script appended: a polyglot) is a 400, although the
re-encoding would drop them anyway. Dimensions over the pixel limit are a 413 before any pixel is
decoded (a decompression bomb costs only its header). The master is the decoded image turned upright
(EXIF orientation), flattened onto white, in RGB, re-encoded as JPEG with no metadata: EXIF (GPS
included), XMP, comments and ICC profiles are gone from it and from every variant made from it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
MASTER_QUALITY = 92


class MediaError(ValueError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Master:
    image: Image.Image
    data: bytes  # the re-encoded JPEG
    sha256: str
    source_format: str

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


def _ends_cleanly(fmt: str, data: bytes) -> bool:
    """True when nothing follows the image's own terminator (padding of NULs or whitespace allowed)."""
    if fmt == "JPEG":
        return data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9")
    if fmt == "PNG":
        return data.rstrip(b"\x00\r\n\t ").endswith(b"IEND\xaeB`\x82")
    if fmt == "GIF":
        return data.rstrip(b"\x00\r\n\t ").endswith(b"\x3b")
    if fmt == "WEBP":  # RIFF size = everything after the first 8 bytes (odd sizes padded to even)
        size = int.from_bytes(data[4:8], "little")
        return len(data) in (size + 8, size + 9)
    return False


def _open(data: bytes, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise MediaError(
                415, "unsupported_image", "Upload a JPEG, PNG, WebP or GIF image (the file could not be read as one)."
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise MediaError(413, "image_too_large", f"The image has more than {max_pixels} pixels.") from None
    if probe.width * probe.height > max_pixels:
        raise MediaError(
            413, "image_too_large", f"The image is {probe.width}x{probe.height}, more than {max_pixels} pixels."
        )
    if probe.width < 1 or probe.height < 1:
        raise MediaError(400, "invalid_image", "The image has no pixels.")
    return probe


def decode(data: bytes, max_pixels: int) -> Master:
    """The re-encoded master of ``data``, or a MediaError (400 broken, 413 too large, 415 not an image)."""
    probe = _open(data, max_pixels)
    fmt = probe.format or ""
    try:
        probe.verify()  # structure and checksums (PNG CRCs) without decoding pixels
    except Exception:
        raise MediaError(400, "invalid_image", f"The {fmt} file is damaged.") from None
    if not _ends_cleanly(fmt, data):
        raise MediaError(400, "trailing_data", f"The file carries data after the end of its {fmt} image; refused.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            image.seek(0)  # GIF, animated WebP: the first frame
            image.load()
            image = ImageOps.exif_transpose(image)
            image = _flatten(image)
    except MediaError:
        raise
    except Exception:
        raise MediaError(400, "invalid_image", f"The {fmt} image could not be decoded.") from None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=MASTER_QUALITY, optimize=True)  # no exif=, no icc_profile=: nothing carried
    master = out.getvalue()
    return Master(image=image, data=master, sha256=hashlib.sha256(master).hexdigest(), source_format=fmt)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB with transparency composited onto white; every other mode converted."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    fresh = image.convert("RGB")
    fresh.info = {}  # exif, icc_profile, comments: dropped
    return fresh


def variant_widths(width: int, widths: list[int]) -> list[int]:
    """The configured widths below the image's own, plus the image's width capped at the largest one."""
    top = min(width, max(widths))
    return sorted({w for w in widths if w < top} | {top})


def encode_variant(image: Image.Image, width: int, fmt: str) -> bytes:
    if width != image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    if fmt == "webp":
        image.save(out, "WEBP", quality=80, method=4)
    else:
        image.save(out, "JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


def height_for(width: int, master_width: int, master_height: int) -> int:
    return max(1, round(master_height * width / master_width))
