"""Helpers shared by every JSON API blueprint."""

from __future__ import annotations

import json
import re

from flask import Blueprint, request

from breakwater.common.errors import ApiError

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a pair is fine (an emoji); a lone half is not text


def json_body() -> dict:
    """The request's JSON object, or a 400/415 ApiError."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json.")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "invalid_json", "The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    if SURROGATE_ESCAPE.search(request.get_data(cache=True)):
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise ApiError(400, "invalid_json", "The request body has an unpaired UTF-16 surrogate escape.") from None
    return data


def require_json_for_writes(bp: Blueprint) -> None:
    """JSON-only writes: a cross-site HTML form cannot send application/json without a CORS preflight,
    which is why the JSON API is exempt from the form CSRF token."""

    @bp.before_request
    def _check():
        if request.method in UNSAFE and (request.content_length or 0) > 0 and not request.is_json:
            raise ApiError(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json.")
