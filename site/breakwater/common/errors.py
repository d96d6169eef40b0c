"""The expected failure every layer raises; ``breakwater.web.errors`` turns it into the HTTP answer."""

from __future__ import annotations


class ApiError(Exception):
    """An expected failure with a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str, **details: object):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
