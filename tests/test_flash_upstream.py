"""Sold out, ended and not yet started are answered upstream (issue 21, point 1): the ``flash-markers`` program
keeps each sale's state file and rejection marker beside its static page (site/breakwater/flash/markers.py),
and the Nginx origin answers a purchase the sale cannot take with the app's own status and body, without
gunicorn. Through the origin and the edge, every buyer from an address of its own (tests/visitors.py).

That a request never reached gunicorn is read from the app's access log: a marker's answer leaves no line for
the buyer's address, while a control request from the same address, sent afterwards, does.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert, select

from routing_helpers import wait_for
from visitors import visitor

ADDRESS = {"region_code": "110101", "detail": "东长安街 1 号", "name": "张三", "phone": "13800138000"}
BODY = {"quantity": 1, "address": ADDRESS}
STATE_KEYS = {"sale_id", "state", "stock_left", "stock_total", "starts_at", "ends_at", "server_time"}
PER_CONNECTION = {"date", "server", "content-length", "connection", "keep-alive", "x-request-id", "set-cookie"}


def at(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def buyers(app):
    """Session cookies of 40 signed-in visitors (inserted in bulk, signed with the app's key)."""
    from breakwater.accounts.models import Role, User
    from breakwater.extensions import db

    prefix = "up" + uuid.uuid4().hex[:6]
    with app.app_context(), db.primary():
        hashed = db.session.scalars(select(User.password_hash).limit(1)).one()
        db.session.execute(
            insert(User), [{"name": f"{prefix}-{i}", "password_hash": hashed, "role": Role.VISITOR} for i in range(40)]
        )
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).where(User.name.like(f"{prefix}-%")).order_by(User.id)))
    serializer = app.session_interface.get_signing_serializer(app)
    return iter([serializer.dumps({"uid": uid, "_permanent": True}) for uid in ids])


def buyer(cookies) -> requests.Session:
    """A signed-in browser from an address of its own; its cookie jar keeps what the site sets (bw_fo)."""
    session = visitor()
    session.signed_in = next(cookies)  # type: ignore[attr-defined]
    session.cookies.set("bw_session", session.signed_in)  # type: ignore[attr-defined]
    return session


def attempt(session: requests.Session, base: str, sale_id: int, key: str | None = None) -> requests.Response:
    return session.post(
        f"{base}/api/flash/{sale_id}/orders", json=BODY, headers={"Idempotency-Key": key or uuid.uuid4().hex},
        timeout=15,
    )  # fmt: skip


@pytest.fixture(scope="module")
def new_sale(editor_token, settings):
    """``new_sale(stock, starts_in, ends_in)`` -> a sale made through the editor API (as an editor makes one)."""
    editor = visitor()
    editor.headers["Authorization"] = f"Bearer {editor_token}"
    origin = settings.origin_url

    def make(stock: int, starts_in: float = -1, ends_in: float = 600) -> int:
        product = editor.post(
            f"{origin}/api/editor/flash/products", json={"name": "抢购 " + uuid.uuid4().hex[:8], "price_cents": 990},
            timeout=15,
        )  # fmt: skip
        assert product.status_code == 201, product.text
        sale = editor.post(
            f"{origin}/api/editor/flash/sales",
            json={"product_id": product.json()["product"]["id"], "stock": stock, "starts_at": at(starts_in),
                  "ends_at": at(ends_in), "limit": 1},
            timeout=15,
        )  # fmt: skip
        assert sale.status_code == 201, sale.text
        return sale.json()["sale"]["id"]

    yield make
    editor.close()


def folder(settings, sale_id: int) -> Path:
    return Path(settings["STATIC_DIR"]) / "flash" / str(sale_id)


def marker(settings, sale_id: int) -> str | None:
    found = sorted(p.name for p in folder(settings, sale_id).glob("closed-*"))
    assert len(found) <= 1, f"more than one marker: {found}"
    return found[0] if found else None


def state(settings, sale_id: int) -> dict | None:
    try:
        return json.loads((folder(settings, sale_id) / "state.json").read_text())
    except (OSError, ValueError):
        return None


def until(predicate, timeout: float, what: str) -> float:
    """Poll every 10 ms; the seconds it took (fails after ``timeout`` plus a margin, so the caller can assert
    the bound itself and show the measured time)."""
    started = time.monotonic()
    wait_for(predicate, timeout=timeout + 5, interval=0.01, what=what)
    return time.monotonic() - started


def app_lines(stack, client: str, path: str) -> list[dict]:
    """The app's access lines for ``path`` requested by ``client`` (what the origin told the app)."""
    lines = []
    for log in (stack.supervisor.log_path(a.name) for a in stack.layout.apps):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and client in line and path in line:
                entry = json.loads(line)
                if entry.get("msg") == "request" and entry.get("client") == client and entry.get("path") == path:
                    lines.append(entry)
    return lines


def reached_app(stack, session: requests.Session, base: str, path: str) -> int:
    """How many of ``session``'s requests for ``path`` reached gunicorn: counted once a control request from the
    same address, sent afterwards, has its own line (so the log is written past the requests counted)."""
    tag = f"/api/auth/me/control-{uuid.uuid4().hex[:10]}"
    assert session.get(base + tag, timeout=15).status_code == 404
    wait_for(lambda: app_lines(stack, session.address, tag), timeout=15, what="the control request's access line")
    time.sleep(0.3)  # another gunicorn process's line for an earlier request has had its moment too
    return len(app_lines(stack, session.address, path))


def app_answer(settings, session: requests.Session, sale_id: int) -> requests.Response:
    """The app's own answer to the same attempt, asked of gunicorn directly (no Nginx in between)."""
    return attempt(session, settings.app_url, sale_id)


def assert_same_answer(upstream: requests.Response, app: requests.Response, status: int, code: str) -> None:
    assert (upstream.status_code, app.status_code) == (status, status), (upstream.text, app.text)
    assert upstream.json()["error"]["code"] == code
    assert upstream.content == app.content, (upstream.content, app.content)
    assert upstream.headers["Content-Type"].split(";")[0] == app.headers["Content-Type"].split(";")[0]
    assert upstream.headers.get("X-Origin-Cache") == "MARKER"
    missing = {h.lower() for h in app.headers} - {h.lower() for h in upstream.headers} - PER_CONNECTION
    assert not missing - {"x-db-route"}, f"the app's headers missing from the origin's answer: {missing}"
    assert upstream.headers.get("X-Request-ID"), "the origin's answer carries its request id"


def test_sold_out_is_marked_within_a_second_and_answered_by_nginx(stack, settings, origin, edge, buyers, new_sale):
    sale_id = new_sale(stock=2)
    wait_for(lambda: (state(settings, sale_id) or {}).get("state") == "live", timeout=5, what="the live state file")
    live = state(settings, sale_id)
    assert set(live) == STATE_KEYS and live["sale_id"] == sale_id, live
    assert (live["stock_left"], live["stock_total"], marker(settings, sale_id)) == (2, 2, None)
    for field in ("starts_at", "ends_at", "server_time"):
        assert live[field].endswith("Z") and datetime.fromisoformat(live[field].replace("Z", "+00:00")), live
    # Rewritten at least every second while live: the times it was written at, as it says, never a second apart.
    written = {live["server_time"]}
    until_s = time.monotonic() + 2.5
    while time.monotonic() < until_s:
        written.add((state(settings, sale_id) or live)["server_time"])
        time.sleep(0.02)
    times = sorted(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in written)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert len(times) >= 3 and max(gaps) <= 1.0, f"state.json written {gaps} s apart"
    served = requests.get(f"{origin}/flash/{sale_id}/state.json", timeout=10)
    assert served.status_code == 200 and served.headers["Cache-Control"] == "public, max-age=1"
    assert set(served.json()) == STATE_KEYS
    at_edge = requests.get(f"{edge}/flash/{sale_id}/state.json", timeout=10)
    assert at_edge.status_code == 200 and int(at_edge.headers.get("Age", "0")) <= 1

    first, last = buyer(buyers), buyer(buyers)
    kept_key = "keep-" + uuid.uuid4().hex
    accepted = attempt(first, origin, sale_id, kept_key)
    assert accepted.status_code == 202, accepted.text
    assert accepted.cookies.get("bw_fo") == str(sale_id), accepted.headers.get("Set-Cookie")
    assert "httponly" in accepted.headers["Set-Cookie"].lower() and "Path=/api/flash" in accepted.headers["Set-Cookie"]
    taken = time.monotonic()  # the last unit is taken during this request: time counts from before it
    assert attempt(last, origin, sale_id).status_code == 202
    until(
        lambda: (
            marker(settings, sale_id) == "closed-sold_out"
            and (state(settings, sale_id) or {}).get("state") == "sold_out"
        ),
        timeout=1.0,
        what="the sold-out marker and state",
    )
    elapsed = time.monotonic() - taken
    assert elapsed <= 1.0, f"the sold-out marker came {elapsed:.2f} s after the last unit was taken"
    assert state(settings, sale_id)["stock_left"] == 0

    # A buyer without an order here: answered by Nginx with the app's own answer, through the origin and the edge.
    for base in (origin, edge):
        late = buyer(buyers)
        upstream = attempt(late, base, sale_id)
        assert_same_answer(upstream, app_answer(settings, late, sale_id), 409, "sold_out")
        assert reached_app(stack, late, base, f"/api/flash/{sale_id}/orders") == 1, "only the direct ask reached it"

    # The first buyer's retry of its accepted order (same key, its browser's bw_fo cookie): the app replays it.
    replay = attempt(first, origin, sale_id, kept_key)
    assert replay.status_code == 202, replay.text
    assert replay.json()["order_id"] == accepted.json()["order_id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    via_edge = attempt(first, edge, sale_id, kept_key)
    assert via_edge.status_code == 202 and via_edge.json()["order_id"] == accepted.json()["order_id"]
    # The same retry from a browser that lost the cookie is answered by the marker: the cookie is what lets it by.
    forgetful = visitor()
    forgetful.cookies.set("bw_session", first.signed_in)
    assert attempt(forgetful, origin, sale_id, kept_key).json()["error"]["code"] == "sold_out"


def test_not_started_and_ended_are_answered_by_nginx_and_follow_the_clock(stack, settings, origin, edge, buyers,
                                                                          new_sale):  # fmt: skip
    sale_id = new_sale(stock=5, starts_in=4, ends_in=7)
    wait_for(lambda: marker(settings, sale_id) == "closed-not_started", timeout=2, what="the not-started marker")
    upcoming = state(settings, sale_id)
    assert upcoming["state"] == "upcoming" and upcoming["stock_left"] == 5, upcoming
    starts = datetime.fromisoformat(upcoming["starts_at"].replace("Z", "+00:00")).timestamp()
    ends = datetime.fromisoformat(upcoming["ends_at"].replace("Z", "+00:00")).timestamp()
    for base in (origin, edge):
        early = buyer(buyers)
        upstream = attempt(early, base, sale_id)
        assert_same_answer(upstream, app_answer(settings, early, sale_id), 403, "not_started")
        assert reached_app(stack, early, base, f"/api/flash/{sale_id}/orders") == 1

    # The marker goes at the start (the program's own timer), and the sale sells.
    wait_for(lambda: marker(settings, sale_id) is None, timeout=starts - time.time() + 2, interval=0.01,
             what="the not-started marker to go")  # fmt: skip
    opened = time.time()
    assert starts - 0.05 <= opened <= starts + 0.5, f"opened {opened - starts:+.2f} s from the start"
    assert state(settings, sale_id)["state"] == "live"
    assert attempt(buyer(buyers), origin, sale_id).status_code == 202

    # At the end the ended marker appears.
    wait_for(lambda: marker(settings, sale_id) == "closed-ended", timeout=ends - time.time() + 2, interval=0.01,
             what="the ended marker")  # fmt: skip
    closed = time.time()
    assert ends - 0.05 <= closed <= ends + 0.5, f"closed {closed - ends:+.2f} s from the end"
    assert state(settings, sale_id)["state"] == "ended"
    for base in (origin, edge):
        late = buyer(buyers)
        upstream = attempt(late, base, sale_id)
        assert_same_answer(upstream, app_answer(settings, late, sale_id), 403, "ended")
        assert reached_app(stack, late, base, f"/api/flash/{sale_id}/orders") == 1


def test_raising_the_stock_or_extending_the_window_reopens_within_a_second(app, settings, origin, buyers, new_sale,
                                                                           editor_api):  # fmt: skip
    sale_id = new_sale(stock=1)
    assert attempt(buyer(buyers), origin, sale_id).status_code == 202
    wait_for(lambda: marker(settings, sale_id) == "closed-sold_out", timeout=2, interval=0.01, what="sold out")
    # The order written first: an edit racing the order's write of the stock row answers 409 stock_busy.
    gate = app.extensions["breakwater.flash.gate"]
    wait_for(lambda: not gate.pending(sale_id), timeout=60, what="the order written")
    started = time.monotonic()
    raised = editor_api("PATCH", f"/flash/sales/{sale_id}", json={"stock": 3})
    assert raised.status_code == 200, raised.text
    # Reopened before the editor heard back (the editor's request waits for the program's word), within a second.
    assert marker(settings, sale_id) is None, "the editor's answer came before the sale reopened at the origin"
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0, f"reopened {elapsed:.2f} s after the editor's request was sent"
    reopened = state(settings, sale_id)
    assert (reopened["state"], reopened["stock_left"], reopened["stock_total"]) == ("live", 2, 3), reopened
    assert [attempt(buyer(buyers), origin, sale_id).status_code for _ in range(3)] == [202, 202, 409]

    ending = new_sale(stock=3, ends_in=2)
    wait_for(lambda: marker(settings, ending) == "closed-ended", timeout=5, interval=0.01, what="the end")
    assert attempt(buyer(buyers), origin, ending).json()["error"]["code"] == "ended"
    started = time.monotonic()
    extended = editor_api("PATCH", f"/flash/sales/{ending}", json={"ends_at": at(600)})
    assert extended.status_code == 200, extended.text
    assert marker(settings, ending) is None, "the editor's answer came before the sale reopened at the origin"
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0, f"reopened {elapsed:.2f} s after the editor's request was sent"
    assert state(settings, ending)["state"] == "live"
    assert attempt(buyer(buyers), origin, ending).status_code == 202


def test_markers_go_with_the_program_and_are_rebuilt_when_it_starts(stack, settings, origin, buyers, new_sale):
    """Stopped, the program removes every marker (Nginx then passes purchases to the app, which answers the same);
    started again, it rebuilds them from the database and the gate."""
    sold = new_sale(stock=1)
    assert attempt(buyer(buyers), origin, sold).status_code == 202
    wait_for(lambda: marker(settings, sold) == "closed-sold_out", timeout=2, interval=0.01, what="sold out")
    rpc = stack.supervisor.rpc()
    rpc.stopProcess("flash-markers")
    try:
        assert marker(settings, sold) is None
        passing = buyer(buyers)
        assert attempt(passing, origin, sold).json()["error"]["code"] == "sold_out"
        assert reached_app(stack, passing, origin, f"/api/flash/{sold}/orders") == 1
    finally:
        rpc.startProcess("flash-markers")
    wait_for(lambda: marker(settings, sold) == "closed-sold_out", timeout=15, what="the marker rebuilt")
