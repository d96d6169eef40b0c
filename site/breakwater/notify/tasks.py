"""Notification e-mail, sent by the `notify` queue's gevent worker through ``BREAKWATER_SMTP_URL``.

The web request never waits for SMTP: it writes an outbox row in its own transaction (see
:mod:`breakwater.queues.outbox`) and returns. Each mail carries a key, claimed in Redis before the
send and marked sent after it: a redelivered or duplicated task does not mail twice (a death between
the SMTP answer and the mark can still send one duplicate: at least once).
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from celery import shared_task

from breakwater import extensions

log = logging.getLogger(__name__)

SENT = "bw:mail:sent:"


def _smtp_send(message: EmailMessage) -> None:
    settings = extensions.settings()
    url = settings.smtp_url
    if url is None:
        log.info("mail not sent (BREAKWATER_SMTP_URL=none): %s to %s", message["Subject"], message["To"])
        return
    parts = urlsplit(url)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with cls(parts.hostname or "127.0.0.1", parts.port or 25, timeout=10) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if parts.username:
            smtp.login(parts.username, parts.password or "")
        smtp.send_message(message)


def send_mail(key: str, to: str, subject: str, body: str) -> bool:
    """Send once per key; returns False when that key was sent before."""
    from breakwater.queues.errors import TransientError

    client = extensions.broker()
    # Claim the key first: two deliveries of one mail running at once must not both send it.
    if not client.set(SENT + key, "sending", nx=True, ex=30):
        if client.get(SENT + key) == b"sent":
            return False
        raise TransientError(f"mail {key} is being sent by another delivery")  # retried; its claim expires
    settings = extensions.settings()
    message = EmailMessage()
    message["From"] = settings["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=key.replace(":", "."), domain="breakwater.invalid")
    message["X-Breakwater-Key"] = key
    message.set_content(body)
    try:
        _smtp_send(message)
    except BaseException:
        client.delete(SENT + key)
        raise
    client.set(SENT + key, "sent", ex=30 * 86400)
    return True


@shared_task(name="breakwater.notify.welcome", ignore_result=True)
def welcome(user_id: int) -> bool:
    """After registration, to the address the user left (if any)."""
    from breakwater.accounts.models import User
    from breakwater.extensions import db

    with db.primary():
        user = db.session.get(User, user_id)
    if user is None or not user.email:
        return False
    body = f"Hello {user.name},\n\nyour Breakwater account is ready. Log in with the name {user.name}.\n"
    return send_mail(f"welcome:{user.id}", user.email, "Welcome to Breakwater", body)


@shared_task(name="breakwater.notify.order_confirmed", ignore_result=True)
def order_confirmed(order_id: str, user_id: int, summary: str = "") -> bool:
    """The flash sale's order confirmation, to the buyer's address if the account has one."""
    from breakwater.accounts.models import User
    from breakwater.extensions import db

    with db.primary():
        user = db.session.get(User, user_id)
    if user is None or not user.email:
        return False
    body = f"Hello {user.name},\n\nyour order {order_id} is confirmed.\n\n{summary}\n"
    return send_mail(f"order:{order_id}", user.email, f"Order {order_id} confirmed", body)


def notify_order(payload: dict, session=None) -> None:
    """Hook for the flash sale's order writer (``extensions.notify_order(app)``).

    With ``session`` (the order's own transaction, before its commit) the mail's intent is an outbox row
    committed together with the order: no death after the commit can lose it. Without one, the intent is
    committed to the outbox on its own before the send."""
    from breakwater.queues.outbox import add, send_durably

    summary = f"{payload.get('quantity', 1)} item(s) in sale {payload.get('sale_id')}"
    kwargs = {"order_id": str(payload["order_id"]), "user_id": payload["user_id"], "summary": summary}
    if session is not None:
        add(session, "breakwater.notify.order_confirmed", kwargs=kwargs)
    else:
        send_durably("breakwater.notify.order_confirmed", kwargs=kwargs)


def init_app(app) -> None:
    app.extensions[extensions.NOTIFY_ORDER] = notify_order
