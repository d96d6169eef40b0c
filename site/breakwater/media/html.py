"""``responsive_img(url, sizes, alt)`` for templates: a ``<picture>`` with WebP and JPEG srcsets.

Width and height come from the image itself, so the browser reserves the box before any byte arrives
(nothing jumps). URLs that are not media (shipped ``/static/`` assets, outside addresses) get a plain
``<img>`` with the fallback box given by the template.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from breakwater.media import services
from breakwater.media.variants import PREFIX


def responsive_img(
    url: str | None,
    sizes: str = "100vw",
    alt: str = "",
    *,
    width: int = 0,
    height: int = 0,
    cls: str = "",
    lazy: bool = True,
) -> Markup:
    if not url:
        return Markup("")
    common = f' alt="{escape(alt)}"' + (f' class="{escape(cls)}"' if cls else "")
    common += ' loading="lazy" decoding="async"' if lazy else ""
    info = services.resolve(url)
    if info is None:
        from breakwater.web.assets import static_url

        box = f' width="{width}" height="{height}"' if width and height else ""
        return Markup(f'<img src="{escape(static_url(url))}"{box}{common}>')
    key, w, h, widths = info
    top = widths[-1]

    def srcset(ext: str) -> str:
        return ", ".join(f"{PREFIX}{key}-{v}.{ext} {v}w" for v in widths)

    shown_h = max(1, round(h * top / w))
    return Markup(
        f'<picture><source type="image/webp" srcset="{srcset("webp")}" sizes="{escape(sizes)}">'
        f'<img src="{PREFIX}{key}-{top}.jpg" srcset="{srcset("jpg")}" sizes="{escape(sizes)}" '
        f'width="{top}" height="{shown_h}"{common}></picture>'
    )
