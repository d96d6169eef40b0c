"""Each sale's state as files beside its static page, so that Nginx answers a purchase the sale cannot take.

``breakwater flash markers`` (supervised program ``flash-markers``, on the origin's host: the data host of a
cluster, where the static folder is) keeps, for every sale, in ``STATIC_DIR/flash/<id>/``:

* ``state.json``: ``{"sale_id", "state", "stock_left", "stock_total", "starts_at", "ends_at", "server_time"}``,
  ``state`` one of ``upcoming``, ``live``, ``sold_out``, ``ended``, times ISO 8601 UTC. Written atomically (a
  temp file in the same folder, then ``os.replace``; no fsync: it is rebuilt from the gate on every start),
  at once on every change and every half second while the sale is upcoming or live (so never more than a
  second apart, whenever the last event-driven write fell between two rounds). Nginx serves it
  ``Cache-Control: public, max-age=1`` (the edge keeps it for that second); the sale page reads it for the
  live stock and the countdown.
* a rejection marker, at most one: ``closed-not_started`` (upcoming), ``closed-sold_out``, ``closed-ended``.
  While one exists, Nginx answers a signed-in buyer's ``POST /api/flash/<id>/orders`` with the app's own
  status and JSON body (403 ``not_started``, 409 ``sold_out``, 403 ``ended``: ``REJECTIONS`` in
  :mod:`breakwater.flash.purchase`) without passing it on to gunicorn (nginx/origin.conf.j2).

The state follows the gate's order of checks: before the window ``upcoming``, after it ``ended``, else
``sold_out`` when no unit is left, else ``live``. Where each part comes from:

* **sell-outs, restocks, editor changes**: the gate's pub/sub events (:data:`breakwater.flash.gate.EVENTS`).
  ``soldout <id>`` comes with the last unit; ``restock <id>`` with a unit given back or stock an editor added;
  ``unlimit <id>`` whenever the gate is (re)loaded, which an editor's every change to a sale does (a raised
  stock, a moved window) and a new sale's creation too. Each event makes this program read the sale's window
  and stock from the gate again (and, for ``unlimit``, its row from the primary) and rewrite its files at
  once: a sell-out is marked, and a raise or extension reopens the sale, within milliseconds.
* **stock**: the gate's stock key (the database's stock when the gate has none, e.g. after Redis lost its
  data, as ``GET /api/flash/<id>`` does; with ``BREAKWATER_FLASH_PURCHASE_PATH=database`` always the
  database's, since the gate is not used then). Re-read every half second for every sale not ended, so a
  missed event (a reconnect, a reconcile that repairs the counters) costs at most that.
* **window boundaries**: this program's clock; it sleeps until the next start or end of any sale (the wait on
  the event channel times out then), so ``closed-not_started`` goes at the start and ``closed-ended``
  appears at the end, within milliseconds. The window itself is the gate's (what decides the orders), the
  database's while the gate has none.
* **the set of sales**: the database (a replica), every sale on start, then every few seconds those that
  ended less than a day ago or end later (a sale ended longer ago keeps its files; an extension of one
  arrives as an event anyway).

An editor's change is seen by the origin before the editor's request returns: after changing the gate, the
editor's request counts an edit of the sale (``...:edits``), announces it (``edited <id>``) and waits, at most a
second, until this program says it has applied that edit (``...:markers``, written once the files are; see
:func:`await_markers`). So a buyer who tries right after an editor raised the stock or extended the window
meets the reopened sale, not a marker a few milliseconds behind. It waits only while this program runs (its
heartbeat key, :data:`ALIVE`, refreshed every half second).

On start every sale's files are rebuilt from the database and the gate. On SIGTERM (``make down``, a
restart by supervisord) every marker is removed before it exits: without this program Nginx passes every
purchase to the app again (fails open), which answers the same, only more expensively; a marker must never
outlive the knowledge that keeps it true. A crash (SIGKILL) leaves them as they were until supervisord
starts it again (a second or two), which rebuilds them.

Not at the edge: Varnish passes every POST on to the origin, as before. Answering there would need the sale's
state at the edge (a copy of this file cached for its second, or a purge per change), which would hold a closed
sale closed up to a second longer after an editor reopens it; a real CDN cannot read the origin's disk either.
The origin's answer costs three stat()s and no gunicorn (`make bench-flash`, part 4: about the static homepage's
rate), so the edge gains little by answering itself.

Replays: a buyer retrying an accepted order with the same Idempotency-Key must get its 202 even after the
sell-out. The app sets a cookie naming the sales the browser has orders in (``bw_fo``, see
:func:`breakwater.flash.api.remember_order`), and Nginx lets such a buyer's attempts on those sales through
to the app, which replays the order. Why a cookie: Nginx cannot look up the buyer's Idempotency-Keys (they
live in Redis), and a cookie set on the 202 arrives with exactly the requests that may be replays. A client
that sets the cookie itself only buys itself the app's answer, the one every attempt got before markers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from breakwater import extensions

log = logging.getLogger(__name__)

#: state -> its rejection marker (``live`` has none)
MARKERS = {"upcoming": "closed-not_started", "sold_out": "closed-sold_out", "ended": "closed-ended"}
ALL_MARKERS = tuple(MARKERS.values())
REFRESH_SECONDS = 0.5  # stock re-read, and state.json rewritten, for every sale not ended
SCAN_SECONDS = 3.0  # the set of sales re-read from a replica
RECENT = timedelta(days=1)  # periodic scans: sales that ended less than this ago, or end later
ALIVE = "bw:flash:markers:alive"  # set (3 s) at every round: editors wait for the program only while it runs
ALIVE_SECONDS = 3


def edits_key(sale_id: int) -> str:
    from breakwater.flash.gate import _tag

    return _tag(sale_id) + ":edits"


def applied_key(sale_id: int) -> str:
    from breakwater.flash.gate import _tag

    return _tag(sale_id) + ":markers"


def await_markers(client, sale_id: int, timeout: float = 1.0) -> bool:
    """After an editor changed a sale in the gate: until the markers program has rewritten the sale's files for
    this change (at most ``timeout``; at once when the program is not running). True when it has."""
    from breakwater.flash.gate import EVENTS

    try:
        if not client.exists(ALIVE):
            return False
        edit = client.incr(edits_key(sale_id))
        client.publish(EVENTS, f"edited {sale_id}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(client.get(applied_key(sale_id)) or 0) >= edit:
                return True
            time.sleep(0.005)
    except Exception as exc:  # Redis trouble: the change is made; the origin follows within a second
        log.warning("flash markers: could not wait for sale %d's files (%s)", sale_id, exc)
    return False


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def state_at(now_ms: int, starts_ms: int, ends_ms: int, stock_left: int) -> str:
    """The gate's order of checks (:data:`breakwater.flash.gate._ACCEPT`): window first, then the stock."""
    if now_ms < starts_ms:
        return "upcoming"
    if now_ms >= ends_ms:
        return "ended"
    return "sold_out" if stock_left <= 0 else "live"


@dataclass
class Sale:
    id: int
    starts_ms: int  # the gate's window when it has one, else the database's
    ends_ms: int
    total: int
    db_stock: int
    gate_stock: int | None = None  # None: the gate has no stock for it (not loaded, or Redis lost it)
    gate_window: tuple[int, int] | None = None
    written: tuple | None = None  # (state, stock_left, window) last written
    written_at: float = 0.0
    edit: int = 0  # the editors' edit count read with the gate state (see await_markers)
    acked: int = 0  # the edit count last acknowledged

    @property
    def window(self) -> tuple[int, int]:
        return self.gate_window or (self.starts_ms, self.ends_ms)

    @property
    def moved(self) -> bool:
        """The database's window is not the gate's (an editor's change whose event was missed, or in flight)."""
        return self.gate_window is not None and self.gate_window != (self.starts_ms, self.ends_ms)


class SaleFiles:
    """Writes a sale's ``state.json`` and its marker in ``root/flash/<id>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def folder(self, sale_id: int) -> Path:
        return self.root / "flash" / str(sale_id)

    def write(self, sale_id: int, state: dict, marker: str | None) -> None:
        folder = self.folder(sale_id)
        folder.mkdir(parents=True, exist_ok=True)
        if marker is not None:  # the new marker first: a change from one closed state to another never opens
            path = folder / marker
            if not path.exists():
                path.touch()
        for name in ALL_MARKERS:
            if name != marker:
                (folder / name).unlink(missing_ok=True)
        data = json.dumps(state, separators=(",", ":")).encode() + b"\n"
        tmp = folder / f".state.json.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / "state.json")

    def marker(self, sale_id: int) -> str | None:
        folder = self.folder(sale_id)
        found = [name for name in ALL_MARKERS if (folder / name).exists()]
        return found[0] if found else None

    def remove_markers(self) -> int:
        removed = 0
        for path in (self.root / "flash").glob("*/closed-*"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        return removed


class Markers:
    """The program: see the module docstring. ``run()`` loops until SIGTERM."""

    def __init__(self, app):
        from breakwater import redis_clients
        from breakwater.flash.gate import EVENTS

        self.app = app
        settings = extensions.settings(app)
        self.files = SaleFiles(Path(settings["STATIC_DIR"]))
        self.gate = extensions.broker(app)
        self.gate_path = extensions.purchase_path(app) == "gate"
        # Its own connection for the subscription: it waits on its socket far longer than the app's timeouts.
        self.listener = redis_clients.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=2)
        self.channel = EVENTS
        self.sales: dict[int, Sale] = {}
        self.pubsub = None
        self.next_scan = 0.0
        self.next_refresh = 0.0
        self.scanned_all = False
        self.stopping = False
        self._complaints: dict[str, str] = {}

    # ------------------------------------------------------------------ reading
    def _complain(self, what: str, exc: Exception | None) -> None:
        """Log a failure once until it changes or clears (the loop retries every second)."""
        text = "" if exc is None else f"{type(exc).__name__}: {exc}"[:300]
        if self._complaints.get(what, "") != text:
            if exc is None:
                log.info("flash markers: %s works again", what)
            else:
                log.warning("flash markers: %s failed (%s); retrying", what, text)
            self._complaints[what] = text

    def scan(self, everything: bool, only: int | None = None) -> None:
        """Sales from the database: a replica for the periodic scans, the primary for one sale an event named."""
        from sqlalchemy import select

        from breakwater.common.times import epoch_ms
        from breakwater.extensions import db
        from breakwater.flash.models import FlashSale, SaleStock

        query = select(
            FlashSale.id, FlashSale.starts_at, FlashSale.ends_at, FlashSale.total_stock, SaleStock.stock
        ).join(SaleStock, SaleStock.sale_id == FlashSale.id)
        if only is not None:
            query = query.where(FlashSale.id == only)
        elif not everything:
            query = query.where(FlashSale.ends_at >= datetime.now(UTC).replace(tzinfo=None) - RECENT)
        with self.app.app_context():
            try:
                with db.primary() if only is not None else contextlib.nullcontext():
                    rows = db.session.execute(query).all()
            finally:
                db.session.rollback()
                db.session.remove()
        for sale_id, starts, ends, total, stock in rows:
            sale = self.sales.get(sale_id)
            if sale is None:
                sale = self.sales[sale_id] = Sale(sale_id, epoch_ms(starts), epoch_ms(ends), total, stock)
            sale.starts_ms, sale.ends_ms, sale.total, sale.db_stock = epoch_ms(starts), epoch_ms(ends), total, stock

    def read_gate(self, sales: list[Sale]) -> None:
        """Window and stock of ``sales`` from the gate, in one round trip."""
        from breakwater.flash.gate import stock_key, window_key

        if not sales:
            return
        pipe = self.gate.pipeline(transaction=False)
        for sale in sales:  # the edit count first: an editor counts an edit after changing the gate
            pipe.get(edits_key(sale.id))
            pipe.get(window_key(sale.id))
            pipe.get(stock_key(sale.id))
        values = pipe.execute()
        for i, sale in enumerate(sales):
            edit, window, stock = values[3 * i : 3 * i + 3]
            parts = window.split() if window else []
            sale.gate_window = (int(parts[0]), int(parts[1])) if len(parts) == 3 else None
            sale.gate_stock = None if stock is None else int(stock)
            sale.edit = int(edit or 0)

    def acknowledge(self, sales: list[Sale]) -> None:
        """Tell waiting editors which of their edits the files now show (see :func:`await_markers`)."""
        done = [sale for sale in sales if sale.edit > sale.acked]
        if done:
            pipe = self.gate.pipeline(transaction=False)
            for sale in done:
                pipe.set(applied_key(sale.id), sale.edit, ex=3600)
            pipe.execute()
            for sale in done:
                sale.acked = sale.edit

    def stock_left(self, sale: Sale) -> int:
        if self.gate_path and sale.gate_stock is not None:
            return max(0, sale.gate_stock)
        return max(0, sale.db_stock)

    # ------------------------------------------------------------------ writing
    def apply(self, sale: Sale, now: float, force: bool = False) -> None:
        starts, ends = sale.window
        left = self.stock_left(sale)
        state = state_at(int(now * 1000), starts, ends, left)
        key = (state, left, sale.total, starts, ends)
        due = state in ("upcoming", "live") and now - sale.written_at >= REFRESH_SECONDS - 0.05  # < 1 s apart
        if not force and key == sale.written and not due:
            return
        previous = sale.written[0] if sale.written else None
        body = {
            "sale_id": sale.id, "state": state, "stock_left": left, "stock_total": sale.total,
            "starts_at": iso(starts), "ends_at": iso(ends), "server_time": iso_ms(now),
        }  # fmt: skip
        self.files.write(sale.id, body, MARKERS.get(state))
        sale.written, sale.written_at = key, now
        if previous != state:
            log.info("flash markers: sale %d %s -> %s (stock %d of %d)", sale.id, previous, state, left, sale.total)

    def next_boundary(self, now: float) -> float | None:
        """The next start or end of any sale (seconds since the epoch)."""
        ms = int(now * 1000)
        upcoming = [edge for sale in self.sales.values() for edge in sale.window if edge > ms]
        return min(upcoming) / 1000 if upcoming else None

    # ------------------------------------------------------------------ events
    def subscribe(self) -> bool:
        if self.pubsub is not None:
            return True
        try:
            pubsub = self.listener.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(self.channel)
        except Exception as exc:
            self._complain("subscribing to the gate's events", exc)
            return False
        self._complain("subscribing to the gate's events", None)
        self.pubsub = pubsub
        # Events may have been missed while not subscribed: read every sale's gate state again at once.
        self.next_refresh = 0.0
        return True

    def drop_subscription(self) -> None:
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                self.pubsub.close()
        self.pubsub = None

    def wait_for_events(self, timeout: float) -> dict[int, str]:
        """Sale ids named by events within ``timeout`` (then whatever else is queued), with the strongest
        reason: ``unlimit`` (re-read the row too) over anything else."""
        named: dict[int, str] = {}
        if not self.subscribe():
            time.sleep(min(timeout, 1.0))
            return named
        try:
            message = self.pubsub.get_message(timeout=max(timeout, 0.0))
            while message is not None:
                data = message.get("data")
                kind, *ids = (data.decode() if isinstance(data, bytes) else str(data)).split()
                if ids and ids[0].isdigit() and kind in ("soldout", "restock", "unlimit", "edited"):
                    # "unlimit <id> <user>": a buyer's unit came back (its "restock" follows); the sale's
                    # row is re-read only for "unlimit <id>", a gate (re)load.
                    reason = "reload" if kind == "unlimit" and len(ids) == 1 else kind
                    if named.get(int(ids[0])) != "reload":
                        named[int(ids[0])] = reason
                message = self.pubsub.get_message(timeout=0)
        except Exception as exc:
            self._complain("listening to the gate's events", exc)
            self.drop_subscription()
            time.sleep(0.2)
        return named

    def handle(self, named: dict[int, str]) -> None:
        """The gate's state of the sales named first (it decides the markers), the database's row afterwards (a
        new sale's, or for the total an editor may have changed): a sale's files follow an event within a
        round trip to Redis."""
        unknown = [i for i in named if i not in self.sales]
        if unknown:
            self.read_rows(unknown)
        sales = [self.sales[i] for i in named if i in self.sales]
        try:
            self.read_gate(sales)
            self._complain("reading the gate", None)
        except Exception as exc:
            self._complain("reading the gate", exc)
            for sale in sales:  # the event itself, then: a sell-out is a sell-out
                if named[sale.id] == "soldout":
                    sale.gate_stock = 0
        now = time.time()
        for sale in sales:
            self.apply(sale, now, force=True)
        reload = [i for i, reason in named.items() if reason == "reload" and i not in unknown]
        if reload:
            self.read_rows(reload)
            now = time.time()
            for i in reload:
                if i in self.sales:
                    self.apply(self.sales[i], now)
        try:
            self.acknowledge(sales)
        except Exception as exc:
            self._complain("acknowledging editors' changes", exc)

    def read_rows(self, sale_ids: list[int]) -> None:
        for sale_id in sale_ids:
            try:
                self.scan(everything=False, only=sale_id)
                self._complain("reading a sale from the primary", None)
            except Exception as exc:
                self._complain("reading a sale from the primary", exc)

    # ------------------------------------------------------------------ the loop
    def step(self) -> None:
        self.subscribe()  # before reading: an event from then on is not missed (a new subscription re-reads all)
        now = time.time()
        if now >= self.next_scan:
            try:
                self.scan(everything=not self.scanned_all)
                self.scanned_all = True
                self._complain("reading the sales from the database", None)
            except Exception as exc:
                self._complain("reading the sales from the database", exc)
            self.next_scan = now + (1.0 if not self.gate_path else SCAN_SECONDS)
        if now >= self.next_refresh:
            ms = int(now * 1000)
            # Not ended, never written, or the database's window differs from the gate's (an event missed)
            open_sales = [s for s in self.sales.values() if s.window[1] > ms or s.written is None or s.moved]
            try:
                self.read_gate(open_sales)
                self.gate.set(ALIVE, os.getpid(), ex=ALIVE_SECONDS)
                self._complain("reading the gate", None)
            except Exception as exc:  # keep what is known; the window timers still run
                self._complain("reading the gate", exc)
                open_sales = []
            self.next_refresh = now + REFRESH_SECONDS
        else:
            open_sales = []
        now = time.time()
        for sale in list(self.sales.values()):
            self.apply(sale, now)
        with contextlib.suppress(Exception):
            self.acknowledge(open_sales)
        deadline = min(self.next_scan, self.next_refresh)
        boundary = self.next_boundary(now)
        if boundary is not None:
            deadline = min(deadline, boundary)
        named = self.wait_for_events(deadline - time.time())
        if named:
            self.handle(named)

    def run(self) -> None:
        def stop(_signum, _frame):
            self.stopping = True
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("flash markers: keeping sale states in %s", self.files.root / "flash")
        try:
            while not self.stopping:
                self.step()
        finally:
            with contextlib.suppress(Exception):
                self.gate.delete(ALIVE)
            removed = self.files.remove_markers()
            log.info("flash markers: stopping; removed %d marker(s) (Nginx passes every purchase to the app)", removed)
            self.drop_subscription()
