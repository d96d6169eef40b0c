"""Raster stand-ins for the seed data's images (the shipped SVGs are refused as uploads), drawn with
Pillow: the same diagonal gradients and circles, rendered as PNG and then sent through the upload
pipeline like any editor's file."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

# name: (width, height, gradient from, gradient to)
SAMPLES = {
    "ad-autumn-sale": (1280, 427, "#c8102e", "#f28c28"),
    "ad-new-arrivals": (1280, 427, "#0b3d5c", "#2a9d8f"),
    "ad-newsletter": (640, 256, "#6a4c93", "#1982c4"),
    "cover-news": (1280, 800, "#0b3d5c", "#3a86ff"),
    "cover-tech": (1280, 800, "#1b4332", "#52b788"),
    "cover-life": (1280, 800, "#9d0208", "#f48c06"),
}


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def render(name: str) -> bytes:
    width, height, start, end = SAMPLES[name]
    a, b = _rgb(start), _rgb(end)
    # A diagonal gradient from two 1-D ramps (fast): each pixel mixes by (x/w + y/h) / 2.
    ramp = Image.linear_gradient("L").resize((width, height))  # top -> bottom
    ramp = Image.blend(ramp, ramp.transpose(Image.Transpose.ROTATE_90).resize((width, height)).transpose(
        Image.Transpose.FLIP_LEFT_RIGHT), 0.5)  # fmt: skip
    image = Image.composite(Image.new("RGB", (width, height), b), Image.new("RGB", (width, height), a), ramp)
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    r = height * 0.45
    draw.ellipse((width * 0.82 - r, height * 0.3 - r, width * 0.82 + r, height * 0.3 + r), fill=(255, 255, 255, 31))
    r2 = height * 0.3
    draw.ellipse((width * 0.9 - r2, height * 0.85 - r2, width * 0.9 + r2, height * 0.85 + r2), fill=(255, 255, 255, 26))
    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
