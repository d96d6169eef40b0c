"""Images for the media tests, made with Pillow."""

from __future__ import annotations

import io
import random

from PIL import ExifTags, Image, ImageDraw


def jpeg_with_gps(width: int, height: int, orientation: int = 1) -> bytes:
    """A JPEG carrying an EXIF orientation and a GPS position (Beijing), different on every call."""
    image = Image.new("RGB", (width, height), tuple(random.randrange(256) for _ in range(3)))
    ImageDraw.Draw(image).rectangle((0, 0, width // 3, height // 3), fill=(255, 255, 255))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 17.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=85)
    return out.getvalue()
