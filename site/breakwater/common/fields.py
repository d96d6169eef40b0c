"""Validating the text fields of editors' JSON: present, a string, trimmed, within its column's size."""

from __future__ import annotations

from breakwater.common.errors import ApiError

# Column sizes (characters); "description" (products) is a TEXT column: 10,000 characters fit in its 64 KiB.
LIMITS = {
    "title": 200,
    "slug": 120,
    "summary": 500,
    "cover_url": 500,
    "link": 500,
    "image_url": 500,
    "description": 10_000,
}


def text(data: dict, field: str, required: bool, default: str = "") -> str:
    value = data.get(field)
    if value is None:
        if required:
            raise ApiError(400, "missing_field", f"{field} is required.", field=field)
        return default
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{field} must be a string.", field=field)
    value = value.strip()
    if required and not value:
        raise ApiError(400, "missing_field", f"{field} must not be empty.", field=field)
    if field in LIMITS and len(value) > LIMITS[field]:
        raise ApiError(400, "field_too_long", f"{field} is longer than {LIMITS[field]} characters.", field=field)
    return value


def url(value: str, field: str) -> str:
    """An http(s) URL or a site path (``/...``); 400 ``invalid_url`` otherwise."""
    if value and not value.startswith(("https://", "http://", "/")):
        raise ApiError(400, "invalid_url", f"{field} must be an http(s) URL or a site path.", field=field)
    return value
