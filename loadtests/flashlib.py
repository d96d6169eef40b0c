"""The flash sale's benchmark pieces shared by bench_flash.py: sales, buyers, one attempt, the
correctness check of a sale, and part 3, the gate against the database-only purchase path."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from benchlib import AppServer, Summary, compare, run_locust
from scenarios import source_addresses
from sqlalchemy import insert, select, text

HERE = Path(__file__).parent
BUY_SCENARIO = HERE / "scenarios" / "flash_buyers.py"
BODY = {"quantity": 1, "address": {"region_code": "110101", "detail": "x", "name": "x", "phone": "13800138000"}}


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat()


def make_sale(app, stock: int, limit: int = 1) -> int:
    """A sale open for an hour, made as `breakwater flash create` makes it (in this process: a CLI
    process per sale costs seconds on a loaded machine)."""
    from breakwater.cache.invalidation import invalidate
    from breakwater.extensions import db
    from breakwater.flash import services

    with app.app_context(), db.primary():
        product = services.create_product(db.session, {"name": "bench " + uuid.uuid4().hex[:8], "price_cents": 100})
        sale = services.create_sale(
            db.session,
            {"product_id": product.id, "stock": stock, "starts_at": iso(-1), "ends_at": iso(3600), "limit": limit},
        )
        invalidate(db.session, f"flash:{sale.id}")
        db.session.commit()
        services.load_gate(sale)
        return sale.id


def make_buyers(app, n: int) -> list[tuple[int, str]]:
    """n visitors inserted in bulk with one existing password hash, their session cookies signed
    with the app's key (as tests/test_flash.py's ``buyers`` fixture does)."""
    from breakwater.accounts.models import Role, User
    from breakwater.extensions import db

    prefix = "bench" + uuid.uuid4().hex[:6]
    with app.app_context(), db.primary():
        hashed = db.session.scalars(select(User.password_hash).limit(1)).first() or "!"
        db.session.execute(
            insert(User), [{"name": f"{prefix}-{i}", "password_hash": hashed, "role": Role.VISITOR} for i in range(n)]
        )
        db.session.commit()
        ids = list(db.session.scalars(select(User.id).where(User.name.like(f"{prefix}-%")).order_by(User.id)))
    serializer = app.session_interface.get_signing_serializer(app)
    return [(uid, serializer.dumps({"uid": uid, "_permanent": True})) for uid in ids]


_addresses: dict[str, str] = {}
_addresses_lock = threading.Lock()


def address_of(cookie: str) -> str:
    """The buyer's own source address (source_addresses.py): a fresh 127/8 one at its first attempt, the same
    one afterwards, in this runner and in the Locust runs it hands the buyer to (``write_buyers``)."""
    with _addresses_lock:
        if cookie not in _addresses:
            _addresses[cookie] = source_addresses.fresh_address()
        return _addresses[cookie]


def write_buyers(path: Path, buyers: list[tuple[int, str]]) -> Path:
    """The buyers for scenarios/flash_buyers.py: a line per buyer, its cookie and its source address."""
    path.write_text("".join(f"{cookie} {address_of(cookie)}\n" for _, cookie in buyers))
    return path


def buy(origin: str, cookie: str, sale_id: int) -> tuple[float, int, str, str]:
    """One attempt by the buyer of ``cookie``, on a connection of its own from the buyer's own address (a
    buyer arriving in a rush); (monotonic time answered, status, error code, order id)."""
    source = address_of(cookie) if source_addresses.on_loopback(origin) else None
    with source_addresses.session(source) if source else requests.Session() as session:
        resp = session.post(
            f"{origin}/api/flash/{sale_id}/orders", json=BODY,
            headers={"Idempotency-Key": uuid.uuid4().hex, "Cookie": f"bw_session={cookie}"}, timeout=60,
        )  # fmt: skip
    data = resp.json() if resp.headers.get("Content-Type", "").startswith("application/json") else {}
    code = (data.get("error") or {}).get("code", "") or ("" if resp.status_code == 202 else resp.text[:60])
    return time.monotonic(), resp.status_code, code, data.get("order_id", "")


def sql(app, query: str, **params):
    from breakwater.extensions import db

    with app.app_context(), db.primary():
        rows = db.session.execute(text(query), params).all()
        db.session.rollback()  # no snapshot kept between samples
    return rows


def gate_stock(app, sale_id: int) -> int | None:
    value = app.extensions["breakwater.redis"].get(f"bw:{{flash:{sale_id}}}:stock")
    return None if value is None else int(value)


def pending(app, sale_id: int) -> int:
    return app.extensions["breakwater.redis"].hlen(f"bw:{{flash:{sale_id}}}:accepted")


def evalsha_calls(app) -> float:
    return float(app.extensions["breakwater.redis"].info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def wait_drained(app, sale_id: int, timeout: float = 180) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pending(app, sale_id):
            return True
        time.sleep(0.2)
    return False


def check_sale(app, sale_id: int, stock: int, limit: int, accepted_ids: list[str], path: str = "gate") -> dict:
    """The correctness checks of one sale, once its accepted requests are written. On the database
    path the gate is not used: its stock is not compared (it keeps what the sale was created with)."""
    confirmed = sql(app, "SELECT id, user_id, quantity FROM flash_orders WHERE sale_id = :s AND status = 'confirmed'",
                    s=sale_id)  # fmt: skip
    failed = sql(app, "SELECT COUNT(*) FROM flash_orders WHERE sale_id = :s AND status <> 'confirmed'", s=sale_id)
    db_stock = sql(app, "SELECT stock FROM flash_stock WHERE sale_id = :s", s=sale_id)[0][0]
    per_user: dict[int, int] = {}
    for row in confirmed:
        per_user[row.user_id] = per_user.get(row.user_id, 0) + row.quantity
    units = sum(r.quantity for r in confirmed)
    ids = [r.id for r in confirmed]
    out = {
        "sale_id": sale_id,
        "stock": stock,
        "confirmed_units": units,
        "stock_sold_db": stock - db_stock,
        "failed_orders": failed[0][0],
        "max_per_buyer": max(per_user.values(), default=0),
        "limit": limit,
        "accepted_202": len(accepted_ids),
        "duplicate_202_order_ids": len(accepted_ids) - len(set(accepted_ids)),
        "duplicate_db_order_ids": len(ids) - len(set(ids)),
        "accepted_ids_equal_confirmed_ids": set(accepted_ids) == set(ids),
        "gate_stock": gate_stock(app, sale_id) if path == "gate" else None,
        "db_stock": db_stock,
        "pending_in_gate": pending(app, sale_id),
        "purchase_path": path,
    }
    out["ok"] = (
        units == stock - db_stock == len(accepted_ids)
        and out["max_per_buyer"] <= limit
        and not out["duplicate_202_order_ids"]
        and not out["duplicate_db_order_ids"]
        and out["accepted_ids_equal_confirmed_ids"]
        and (path == "database" or out["gate_stock"] == db_stock)
        and not out["pending_in_gate"]
        and not out["failed_orders"]
    )
    return out


def check_line(c: dict) -> str:
    gate = c.get("purchase_path", "gate") == "gate"
    ok = "201s" if not gate else "202s"
    where = (
        f"gate stock {c['gate_stock']} == database stock {c['db_stock']}, pending {c['pending_in_gate']}"
        if gate
        else f"database stock {c['db_stock']} (database path: no gate)"
    )
    return (
        f"sale {c['sale_id']} ({c.get('purchase_path', 'gate')} path): confirmed {c['confirmed_units']} == stock "
        f"sold {c['stock_sold_db']} == {ok} {c['accepted_202']} (failed orders {c['failed_orders']}); most per "
        f"buyer {c['max_per_buyer']} (limit {c['limit']}); duplicate order ids {c['duplicate_202_order_ids']} in "
        f"{ok}, {c['duplicate_db_order_ids']} in the database, {ok[:3]} ids == confirmed ids "
        f"{c['accepted_ids_equal_confirmed_ids']}; {where}: **{'pass' if c['ok'] else 'FAIL'}**"
    )


# ---------------------------------------------------------------------- part 2: the burst's figures
def peak_shaved(accepted_per_s: list[int], written_per_s: list[int]) -> float | None:
    """How much the queue flattened the peak, like with like: the busiest 1-s bin of orders accepted at the
    gate over the busiest 1-s bin of orders written by the queue, both binned alike (None if nothing written)."""
    peak_written = max(written_per_s, default=0)
    return round(max(accepted_per_s, default=0) / peak_written, 2) if peak_written else None


def peak_shaved_text(burst: dict) -> str:
    """The burst's peak shaved in words, from its figures (older results without ``peak_shaved``: from its two
    peaks, never from the queue's average)."""
    shaved = peak_shaved([burst.get("peak_accepted_per_s", 0)], [burst.get("peak_written_per_s", 0)])
    if shaved is None:
        return "Peak shaved: not measured (nothing written in a full 1-s bin)"
    return (
        f"Peak shaved: {shaved:.1f}x (the busiest 1-s bin accepted at the gate, {burst['peak_accepted_per_s']}/s, "
        f"over the busiest 1-s bin written by the orders queue, {burst['peak_written_per_s']}/s, the same bins)"
    )


def burst_rates(samples: list[tuple[float, int, int]], start: float, attempts_end: float, stock: int,
                confirmed: int) -> tuple[dict, dict]:  # fmt: skip
    """The burst's rates from its 100 ms samples (seconds since the sampler's start, accepted so far, written
    so far), ``start`` and ``attempts_end`` being the first attempt and the end of the attempts on that clock:
    (per second: the full 1-s bins from the first attempt and the accepted and written counts in each; the
    figures of the report, the peak shaved among them)."""
    end = samples[-1][0]

    def at(t: float, col: int) -> int:
        return max((s[col] for s in samples if s[0] <= t), default=0)

    bins = [start + i for i in range(int((end - start) // 1))]  # full seconds only: a partial one undercounts
    acc_rate = [at(b + 1, 1) - at(b, 1) for b in bins]
    wr_rate = [at(b + 1, 2) - at(b, 2) for b in bins]
    first_write = next((s[0] for s in samples if s[2] > 0), end)
    last_write = next((s[0] for s in samples if s[2] >= confirmed), end)
    written_busy = [r for b, r in zip(bins, wr_rate, strict=True) if first_write <= b and b + 1 <= last_write]
    during = [r for b, r in zip(bins, wr_rate, strict=True) if first_write <= b and b + 1 <= attempts_end]
    after = [r for b, r in zip(bins, wr_rate, strict=True) if attempts_end <= b and b + 1 <= last_write]
    figures = {
        "accepted_at_gate_s": round(next((s[0] for s in samples if s[1] >= stock), end) - start, 2),
        "all_written_s": round(last_write - start, 2),
        "peak_accepted_per_s": max(acc_rate, default=0),
        "peak_written_per_s": max(wr_rate, default=0),
        "peak_shaved": peak_shaved(acc_rate, wr_rate),
        "written_per_s_while_writing": round(confirmed / max(last_write - first_write, 1e-9), 1),
        "written_per_s_full_seconds_min_max": [min(written_busy, default=0), max(written_busy, default=0)],
        "written_per_s_median_while_attempts_ran": statistics.median(during) if during else None,
        "written_per_s_median_after_attempts_ended": statistics.median(after) if after else None,
    }
    return {"bins": bins, "accepted": acc_rate, "written": wr_rate}, figures


# ---------------------------------------------------------------------- part 3: gate vs database path
def _sold_units(app, sale_id: int, stock: int, path: str) -> int:
    if path == "gate":
        left = gate_stock(app, sale_id)
        return stock - (left if left is not None else stock)
    return stock - sql(app, "SELECT stock FROM flash_stock WHERE sale_id = :s", s=sale_id)[0][0]


def purchase_paths(app, stack, buyers, raw: Path, tmpdir: Path, users: int, seconds: int, rounds: int, stock: int):
    """A rush per run: a fresh sale of ``stock`` units (limit 1), every attempt made by the next of the
    buyers in turn, against two gunicorns alike but for BREAKWATER_FLASH_PURCHASE_PATH (gate: 202 and
    the orders queue writes; database: SELECT ... FOR UPDATE on the stock row and the order written
    before the 201), interleaved. Every 100 ms the units sold so far are sampled (the gate's stock key,
    or the stock row on the primary), for how fast each path sells the stock."""
    cookies = write_buyers(tmpdir / "rush-buyers.txt", buyers)
    workers, threads = stack.settings.int("WEB_WORKERS"), stack.settings.int("WEB_THREADS")
    servers = {
        path: AppServer(f"flash-{path}", stack, {"BREAKWATER_FLASH_PURCHASE_PATH": path}, workers=workers,
                        threads=threads)
        for path in ("gate", "database")
    }  # fmt: skip
    summaries = {path: Summary(f"purchase, {path} path") for path in servers}
    checks, runs = [], []
    try:
        for server in servers.values():
            server.start()
        for path, server in servers.items():  # each answers a few of each request first (pools, caches)
            warm = make_sale(app, 1)
            for i in range(10 if os.environ.get("BENCH_QUICK") == "1" else 40):
                requests.get(f"{server.url}/api/home", timeout=30)
                requests.get(f"{server.url}/api/flash/{warm}", timeout=30)
                status = buy(server.url, buyers[i % len(buyers)][1], warm)[1]
                if status >= 500:
                    raise RuntimeError(f"the {path} path's server answered {status} while warming up")
        for r in range(rounds):
            for path in ("gate", "database") if r % 2 == 0 else ("database", "gate"):
                sale_id = make_sale(app, stock)
                outcomes = tmpdir / f"outcomes-{r}-{path}.json"
                samples: list[tuple[float, int]] = []
                stop = threading.Event()
                t0 = time.monotonic()

                def sampler(sale_id=sale_id, path=path, samples=samples, stop=stop, t0=t0) -> None:
                    while not stop.is_set():
                        t = time.monotonic()
                        samples.append((round(t - t0, 3), _sold_units(app, sale_id, stock, path)))
                        stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

                thread = threading.Thread(target=sampler, daemon=True)
                thread.start()
                env = {
                    "BENCH_COOKIES_FILE": str(cookies), "BENCH_SALE_ID": str(sale_id), "BENCH_BUYER_RATE": "3",
                    "BENCH_OUTCOMES_FILE": str(outcomes),
                    # Attempts still running when the time is up finish and are counted (their orders
                    # exist either way; the check compares every answered order id with the database).
                    "LOCUST_STOP_TIMEOUT": "30",
                    "BENCH_EXPECT": f"{202 if path == 'gate' else 201}:,409:sold_out,409:limit_reached",
                }  # fmt: skip
                result = run_locust(
                    f"purchase, {path} path", BUY_SCENARIO, servers[path].url, users, seconds, "target", env,
                    raw=raw, run_id=f"p{r + 1}-{path}", round_no=r + 1,
                )  # fmt: skip
                stop.set()
                thread.join()
                out = json.loads(outcomes.read_text())
                drained = wait_drained(app, sale_id) if path == "gate" else True
                check = check_sale(app, sale_id, stock, 1, out["accepted"], path)
                check["drained"] = drained
                check["ok"] = check["ok"] and drained
                check["answers"] = out["outcomes"]
                started = next((t for t, sold in samples if sold > 0), None)
                sold_out_at = next((t for t, sold in samples if sold >= stock), None)
                sell_s = sold_out_at - started if started is not None and sold_out_at is not None else None
                final = samples[-1][1]
                last_sale = next((t for t, sold in samples if sold >= final), None)
                selling = last_sale - started if started is not None and last_sale is not None else 0
                run = {
                    "path": path, "round": r + 1, "sale_id": sale_id, "rps": result.rps, "p50": result.p50,
                    "p95": result.p95, "p99": result.p99, "answers": out["outcomes"], "sold": samples[-1][1],
                    "sold_out": sold_out_at is not None, "selling_seconds": sell_s,
                    "units_per_s_while_selling": round(final / selling, 1) if selling > 0 else None,
                    "ok": check["ok"],
                    "raw": result.raw,
                }  # fmt: skip
                if not check["ok"]:
                    result.problems.append("check: the correctness check failed")
                summaries[path].runs.append(result)
                checks.append(check)
                runs.append(run)
                print(
                    f"round {r + 1}/{rounds} purchase {path:<8} {result.rps:7.0f} req/s  p50 {result.p50:.0f} "
                    f"p95 {result.p95:.0f} p99 {result.p99:.0f} ms  sold {run['sold']}/{stock}"
                    f"{f' in {sell_s:.1f}s' if sell_s is not None else ''}  {out['outcomes']}  "
                    f"check {'pass' if check['ok'] else 'FAIL'}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()
    gate, database = summaries["gate"], summaries["database"]
    comparison = compare("**database path** / gate path, purchase attempts per second", database, gate, fmt="{:.2f}")
    return [gate, database], comparison, checks, runs


def purchase_notes(runs: list[dict], summaries: list[Summary], stock: int, buyers: int, users: int, seconds: int):
    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    lines = [
        f"**Purchase paths** (`BREAKWATER_FLASH_PURCHASE_PATH`, a setting for this comparison only): per run a fresh "
        f"sale of {stock} units, limit 1, Locust FastHttpUser x{users} for {seconds}s, {buyers} signed-in buyers "
        "dealt out to the users and each user's buyers trying in turn, each buyer on a connection of its own from "
        "a 127/8 address of its own, at most 3 attempts a second (fresh Idempotency-Key each; the app's limits "
        "per buyer and per address at their defaults), straight to one of two gunicorns "
        "started alike on the same stack (the stack's web settings, no Nginx in front), interleaved (gate, "
        "database, then reversed). gate: the Lua gate answers 202 and the `orders` queue writes; database: "
        "every attempt takes `SELECT ... FOR UPDATE` on the sale's stock row on the primary and writes the "
        "confirmed order before answering 201. Both answer 409 sold_out / limit_reached with the same codes. "
        "Units sold are sampled every 100 ms (the gate's stock key; the stock row on the primary).",
        "",
        "| path | attempts/s (median, min-max) | p50 / p95 / p99 ms | sold the stock in (s, median of the runs "
        "that sold out) | "
        "units sold/s while stock lasted (median) | answers, all runs | correctness |",
        "|---|---|---|---|---|---|---|",
    ]
    for summary in summaries:
        path = summary.config.split(", ")[1].split()[0]
        mine = [r for r in runs if r["path"] == path]
        answers: dict[str, int] = {}
        for r in mine:
            for k, v in r["answers"].items():
                answers[k] = answers.get(k, 0) + v
        lo, hi = summary.spread("rps")
        sell = median([r["selling_seconds"] for r in mine])
        units = median([r["units_per_s_while_selling"] for r in mine])
        sold_out = sum(r["sold_out"] for r in mine)
        lines.append(
            f"| {path} | {summary.median('rps'):.0f} ({lo:.0f}-{hi:.0f}) | {summary.median('p50'):.0f} / "
            f"{summary.median('p95'):.0f} / {summary.median('p99'):.0f} | "
            f"{f'{sell:.1f}' if sell is not None else '-'} ({sold_out}/{len(mine)} runs sold out; units sold "
            f"{', '.join(str(r['sold']) for r in mine)}) | "
            f"{f'{units:.0f}' if units is not None else '-'} | "
            f"{', '.join(f'{k}: {v}' for k, v in sorted(answers.items()))} | "
            f"{'pass' if all(r['ok'] for r in mine) else '**FAIL**'} ({len(mine)} sales) |"
        )
    lines += [
        "",
        "The sell-out time is measured from the first sample with a unit sold to the first with none left (100 ms "
        "resolution), units sold/s from the first sample with a unit sold to the first with the run's final "
        "count; the gate's figures are units accepted (written later by the queue), the database's units "
        "written. Attempts still running when a run's time is up finish (Locust's stop timeout) and count. "
        "Attempts/s counts every answer of the run, most of them rejections once the stock is gone: on "
        "the gate path those are answered by the in-process sold-out flag, on the database path each still "
        "queues for the stock row's lock on the primary.",
        "",
    ]
    return lines
