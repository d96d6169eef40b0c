"""Errors a task may be retried for: the other side may answer next time."""

from __future__ import annotations

import smtplib
import socket


class TransientError(Exception):
    """Raise (or wrap) when trying again later may succeed: a timeout, a refused connection, a 503."""


def transient_errors() -> tuple[type[BaseException], ...]:
    import kombu.exceptions
    import redis
    import sqlalchemy.exc

    from breakwater.database.router import PrimaryUnavailable

    return (
        PrimaryUnavailable,  # the primary is down or fenced: a promotion or a restart brings writes back
        TransientError,
        ConnectionError,  # includes refused/reset connections
        TimeoutError,
        socket.timeout,
        smtplib.SMTPServerDisconnected,
        smtplib.SMTPConnectError,
        redis.ConnectionError,
        redis.TimeoutError,
        sqlalchemy.exc.OperationalError,  # lost connection, primary down, lock wait timeout
        kombu.exceptions.OperationalError,
    )
