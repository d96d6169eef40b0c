"""What the flash-sale tests share: sales made with the CLI, signed-in buyers, one purchase attempt from the
buyer's own address, and the sale's state in the database and the gate.

Every buyer sends all of its attempts (and reads its orders) from an address of its own (tests/visitors.py),
as buyers really come: the per-address limits (Nginx's write limit, FLASH_ADDRESS_RATE) then see each buyer
as the client it is, and keep their defaults. A test that wants several buyers behind one address (a
household, an office) passes ``address=``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import insert, select, text

from routing_helpers import wait_for
from visitors import fresh_address, visitor

ADDRESS = {"region_code": "110101", "detail": "东长安街 1 号", "name": "张三", "phone": "13800138000"}
BREAKWATER = str(Path(sys.executable).parent / "breakwater")


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat()


def make_buyers(app, n: int) -> list[tuple[int, str]]:
    """``n`` visitors with session cookies, (user id, cookie) each (inserted in bulk and signed with the app's
    key: logging hundreds of people in through the password hash would take half a minute and test nothing)."""
    from breakwater.accounts.models import Role, User
    from breakwater.extensions import db

    prefix = "b" + uuid.uuid4().hex[:6]
    with app.app_context(), db.primary():
        hashed = db.session.scalars(select(User.password_hash).limit(1)).one()
        db.session.execute(
            insert(User), [{"name": f"{prefix}-{i}", "password_hash": hashed, "role": Role.VISITOR} for i in range(n)]
        )
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).where(User.name.like(f"{prefix}-%")).order_by(User.id)))
    serializer = app.session_interface.get_signing_serializer(app)
    return [(uid, serializer.dumps({"uid": uid, "_permanent": True})) for uid in ids]


def make_sale(stock: int, starts: float = -1, ends: float = 600, limit: int = 1) -> int:
    env = {**os.environ}
    result = subprocess.run(
        [BREAKWATER, "flash", "create", "--product", "秒杀商品 " + uuid.uuid4().hex[:6], "--stock", str(stock),
         "--starts", iso(starts), "--ends", iso(ends), "--limit", str(limit)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def cli_env(stack) -> Iterator[None]:
    """The CLI (``make_sale``) reads the test stack's settings from the environment: set for the block."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in stack.settings.child_env().items() if k.startswith("BREAKWATER_")})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


_addresses: dict[str, str] = {}
_addresses_lock = threading.Lock()


def address_of(cookie: str) -> str:
    """The buyer's own source address: a fresh one at its first request, the same one afterwards."""
    with _addresses_lock:
        if cookie not in _addresses:
            _addresses[cookie] = fresh_address()
        return _addresses[cookie]


def _on_loopback(url: str) -> bool:
    try:
        return ipaddress.ip_address(urlsplit(url).hostname or "").is_loopback
    except ValueError:
        return urlsplit(url).hostname == "localhost"


def client_for(url: str, cookie: str | None = None, address: str | None = None) -> requests.Session:
    """A session for a request to ``url`` from the buyer's own address (``address``, else the cookie's; a fresh
    one without either). Only a stack on this machine's loopback can be reached from a 127/8 source; the
    cluster's namespace hosts are reached from the test host's own address (a host of its own)."""
    if not _on_loopback(url):
        return requests.Session()
    return visitor(address or (address_of(cookie) if cookie else None))


def buy(origin, cookie, sale_id, key=None, body=None, timeout=30, address=None):
    """One purchase attempt by the buyer of ``cookie``, from that buyer's own address (or ``address``)."""
    with client_for(origin, cookie, address) as client:
        return client.post(
            f"{origin}/api/flash/{sale_id}/orders",
            json=body or {"quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
            cookies={"bw_session": cookie},
            timeout=timeout,
        )


def read_as(url: str, cookie: str, timeout: float = 10) -> requests.Response:
    """A GET by the buyer of ``cookie`` (its orders, its order's status), from that buyer's own address."""
    with client_for(url, cookie) as client:
        return client.get(url, cookies={"bw_session": cookie}, timeout=timeout)


def orders_of(db_app, sale_id):
    from breakwater.extensions import db

    with db_app.app_context(), db.primary():
        rows = db.session.execute(
            text("SELECT user_id, status, quantity FROM flash_orders WHERE sale_id = :s"), {"s": sale_id}
        ).all()
        stock = db.session.execute(text("SELECT stock FROM flash_stock WHERE sale_id = :s"), {"s": sale_id}).scalar()
        db.session.rollback()
    return rows, stock


def gate_stock(app, sale_id):
    return int(app.extensions["breakwater.redis"].get(f"bw:{{flash:{sale_id}}}:stock"))


def wait_written(app, sale_id, timeout=90):
    gate = app.extensions["breakwater.flash.gate"]
    wait_for(lambda: not gate.pending(sale_id), timeout=timeout, interval=0.2, what="every accepted order written")
