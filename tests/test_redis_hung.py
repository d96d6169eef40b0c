"""A gate Redis (or its Sentinels) that accepts connections and never answers costs a request at most
its short timeouts: reads still answer 200 within 1.5 s, a purchase answers 503 ``gate_unavailable``
within 2 s. Every Redis client of the app is bounded: the gate, the cache, Flask-Limiter's storage (and
its Sentinel clients, whose library defaults are 5 s per call) and Celery's result backend.

The hung servers are real: a redis-server and a redis-sentinel monitoring it, both SIGSTOPped (the
kernel still completes the TCP handshake; nothing ever answers). The app under test is a one-process
gunicorn on the test stack's database and cache, its gate Redis setting pointed at them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from breakwater_tools.stack.ports import free_ports

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
ADDRESS = {"region_code": "110101", "detail": "东长安街 1 号", "name": "张三", "phone": "13800138000"}


@pytest.fixture(scope="module")
def hung_redis(tmp_path_factory):
    """(redis port, sentinel port): both accept connections and never answer."""
    state = tmp_path_factory.mktemp("hung-redis")
    redis_port, sentinel_port = free_ports(2)
    (state / "sentinel.conf").write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {state}\nsentinel monitor hung 127.0.0.1 {redis_port} 1\n"
    )
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--dir", str(state)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            ["redis-server", str(state / "sentinel.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ),
    ]  # fmt: skip
    try:
        for port in (redis_port, sentinel_port):
            _wait_answers(port)
        for proc in procs:
            os.kill(proc.pid, signal.SIGSTOP)
        yield redis_port, sentinel_port
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)


def _wait_answers(port: int) -> None:
    import redis

    deadline = time.monotonic() + 20
    while True:
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def sale_and_buyer(app):
    """A sale on the stack's real gate, and a signed-in buyer's session cookie."""
    from breakwater.accounts.models import Role, User
    from breakwater.extensions import db
    from breakwater.flash import services

    now = datetime.now(UTC)
    with app.app_context(), db.primary():
        hashed = db.session.scalars(select(User.password_hash).limit(1)).one()
        buyer = User(name="hung-" + uuid.uuid4().hex[:8], password_hash=hashed, role=Role.VISITOR)
        db.session.add(buyer)
        product = services.create_product(db.session, {"name": "秒杀 " + uuid.uuid4().hex[:6], "price_cents": 100})
        db.session.flush()
        sale = services.create_sale(
            db.session,
            {"product_id": product.id, "stock": 5, "starts_at": (now - timedelta(minutes=1)).isoformat(),
             "ends_at": (now + timedelta(hours=1)).isoformat(), "limit": 1},
        )  # fmt: skip
        db.session.commit()
        services.load_gate(sale)
        sale_id, uid = sale.id, buyer.id
    cookie = app.session_interface.get_signing_serializer(app).dumps({"uid": uid, "_permanent": True})
    return sale_id, cookie


@pytest.fixture(scope="module", params=["redis", "sentinel"])
def hung_app(request, stack, hung_redis, tmp_path_factory):
    """A gunicorn whose gate Redis is the hung server, directly or through the hung Sentinel."""
    redis_port, sentinel_port = hung_redis
    url = {
        "redis": f"redis://127.0.0.1:{redis_port}/0",
        "sentinel": f"redis+sentinel://127.0.0.1:{sentinel_port}/hung",
    }[request.param]
    env = stack.settings.child_env()
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"BREAKWATER_REDIS_URL": url, "BREAKWATER_LOG_LEVEL": "WARNING"})
    (port,) = free_ports(1)
    log = tmp_path_factory.mktemp("hung-app") / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread", "--threads", "4",
             "--no-control-socket", "breakwater.wsgi:app"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(f"{base}/api/regions", timeout=20)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the app did not start:\n" + log.read_text()[-2000:]) from None
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _timed(method: str, url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.request(method, url, timeout=30, **kwargs)
    return response, time.monotonic() - started


def test_reads_answer_at_once_while_the_gate_redis_hangs(hung_app, sale_and_buyer):
    sale_id, _cookie = sale_and_buyer
    rows = []
    for _round in range(2):  # the second round finds the clients in whatever state the first left them
        for path in ("/api/home", f"/api/flash/{sale_id}", "/api/articles?page=1"):
            response, took = _timed("GET", hung_app + path)
            rows.append((path, response.status_code, round(took, 2)))
    assert all(status == 200 and took < 1.5 for _path, status, took in rows), rows


def test_a_purchase_answers_gate_unavailable_at_once_while_the_gate_redis_hangs(hung_app, sale_and_buyer):
    sale_id, cookie = sale_and_buyer
    rows = []
    for _attempt in range(3):
        response, took = _timed(
            "POST", f"{hung_app}/api/flash/{sale_id}/orders", json={"quantity": 1, "address": ADDRESS},
            headers={"Idempotency-Key": uuid.uuid4().hex}, cookies={"bw_session": cookie},
        )  # fmt: skip
        code = response.json().get("error", {}).get("code") if response.content else None
        rows.append((response.status_code, code, response.headers.get("Retry-After"), round(took, 2)))
    assert all(row[:3] == (503, "gate_unavailable", "1") and row[3] < 2.0 for row in rows), rows
