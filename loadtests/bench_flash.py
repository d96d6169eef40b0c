"""`make bench-flash`: the flash sale's rejection path against the cached homepage data, and one burst.

1. **Rejection path**: with Locust (FastHttpUser, interleaved rounds), through the stack's Nginx origin
   (microcache off) to its gunicorn: purchase attempts on a sold-out sale (409 ``sold_out``, answered by
   the origin from the sale's marker, part 4; by the in-process sold-out flag until it is there) and on a
   sale every buyer has already bought their one unit of (409 ``limit_reached``, decided by the per-process
   memo of buyers at their limit after one gate call per buyer and process), against the cached
   ``GET /api/home``. Target: each rejection path sustains at least 0.7 of ``/api/home``'s req/s.
2. **One burst**: BENCH_BURST_BUYERS buyers (2 attempts each, shuffled) against a sale of
   BENCH_BURST_STOCK units; every 100 ms the gate's stock key and the primary's confirmed count are
   sampled, so accepted/s at the gate and orders written/s by the ``orders`` queue are compared (the
   peak shaved: the busiest full 1-s bin of each, the same bins). Chart in results/bench-flash/burst.png.
3. **Gate vs database path**: the same rush (a fresh sale per run, every attempt by the next buyer)
   against two gunicorns alike but for BREAKWATER_FLASH_PURCHASE_PATH (``gate`` / ``database``:
   ``SELECT ... FOR UPDATE`` on the stock row, the order written before the 201), interleaved:
   attempts/s, p50/p95/p99, how fast each sells the stock, and the correctness check for both.
4. **Sold out, answered upstream** (flash_upstream.py): with wrk, a signed-in buyer's POST on a sold-out sale,
   answered by the Nginx origin from the sale's marker, against the static homepage through the same origin,
   interleaved in the same run. Goal: at least 0.5 of the homepage's req/s; checked: not one attempt reaches
   gunicorn.

BENCH_QUICK=1 shrinks every part (3 s runs, one round, small sales) so the whole runner takes about
2 minutes, half of it the stack's start; its report says so and no tracked file changes.

Every limit keeps its default (Nginx's writes per address, the app's FLASH_USER_RATE per buyer and
FLASH_ADDRESS_RATE per address): each simulated buyer sends from a 127/8 address of its own
(scenarios/source_addresses.py), in Locust (scenarios/flash_buyers.py: a buyer's own connection, at most
BENCH_BUYER_RATE attempts a second) and in the burst's threads (a new connection per attempt), so the load
is many buyers within their own limits, as in a real rush; a 429 is a failed request. Correctness is
checked for every sale: confirmed == stock sold, nobody over the limit, no duplicate order ids, gate
stock == database stock once drained.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from benchlib import (
    RESULTS_REL,
    Summary,
    compare,
    raw_dir,
    run_locust,
    start_private_stack,
    update_readme,
    write_report,
)
from flash_upstream import check_line as upstream_check_line
from flash_upstream import knobs as upstream_knobs
from flash_upstream import notes as upstream_notes
from flash_upstream import sold_out_upstream
from flashlib import (
    BUY_SCENARIO,
    burst_rates,
    buy,
    check_line,
    check_sale,
    evalsha_calls,
    gate_stock,
    make_buyers,
    make_sale,
    peak_shaved_text,
    purchase_notes,
    purchase_paths,
    sql,
    wait_drained,
    write_buyers,
)

HERE = Path(__file__).parent
GET_SCENARIO = HERE / "scenarios" / "get_path.py"
OVERRIDES = {"BREAKWATER_ORIGIN_MICROCACHE": "0"}  # every limit at its default: one address per buyer instead
#: attempts a second per buyer on the rejection path: within Nginx's 20 r/s per address (the app's limits do
#: not count a sold_out or limit_reached answered from the web process's memory)
REJECTION_BUYER_RATE = "15"


# ---------------------------------------------------------------------- part 1: rejection path
def rejection_path(app, stack, buyers, raw: Path, tmpdir: Path, users: int, seconds: int, rounds: int):
    origin = stack.settings.origin_url
    checks, extra_notes = [], []
    # A sold-out sale: one unit, bought by a buyer outside the run (a process that has not heard "soldout"
    # yet would tell that one limit_reached); then every process rejects without the gate.
    (_, outsider), buyers = buyers[0], buyers[1:]
    sold_out_sale = make_sale(app, 1)
    first = buy(origin, outsider, sold_out_sale)
    if first[1] != 202:
        raise RuntimeError(f"the sold-out sale's only unit was not accepted: {first}")
    wait_drained(app, sold_out_sale)
    time.sleep(2)
    # A sale with plenty of stock whose every buyer in the run already has their one unit.
    limit_sale = make_sale(app, 1_000_000)
    with ThreadPoolExecutor(16) as pool:
        first_buys = list(pool.map(lambda b: buy(origin, b[1], limit_sale), buyers))
    if any(r[1] != 202 for r in first_buys):
        bad = [r for r in first_buys if r[1] != 202]
        raise RuntimeError(f"{len(bad)} first purchases on the limit sale not accepted: {bad[:5]}")
    if not wait_drained(app, limit_sale):
        raise RuntimeError("the limit sale's orders were not written in time")
    cookies = write_buyers(tmpdir / "buyers.txt", buyers)
    home = requests.get(origin + "/api/home", timeout=10)
    home = requests.get(origin + "/api/home", timeout=10)  # warm
    xcache = home.headers.get("X-Cache")
    home_env = {"BENCH_PATH": "/api/home", "BENCH_EXPECT_XCACHE": "hit,stale,miss" if xcache else ""}
    if not xcache:
        extra_notes.append("/api/home answered without X-Cache through Nginx, so its cache state was not checked.")
    configs = [
        ("home cached", GET_SCENARIO, home_env),
        ("flash sold_out", BUY_SCENARIO, {"BENCH_COOKIES_FILE": str(cookies), "BENCH_SALE_ID": str(sold_out_sale),
                                          "BENCH_EXPECT": "409:sold_out", "BENCH_BUYER_RATE": REJECTION_BUYER_RATE}),
        ("flash limit_reached", BUY_SCENARIO, {"BENCH_COOKIES_FILE": str(cookies), "BENCH_SALE_ID": str(limit_sale),
                                               "BENCH_EXPECT": "409:limit_reached",
                                               "BENCH_BUYER_RATE": REJECTION_BUYER_RATE}),
    ]  # fmt: skip
    summaries = {name: Summary(name) for name, _, _ in configs}
    for r in range(rounds):
        for name, scenario, env in configs if r % 2 == 0 else list(reversed(configs)):
            before = evalsha_calls(app)
            result = run_locust(
                name, scenario, origin, users, seconds, "target", env,
                raw=raw, run_id=f"r{r + 1}-{name.replace(' ', '-')}", round_no=r + 1,
            )  # fmt: skip
            result.checks = {"gate_script_calls": evalsha_calls(app) - before}
            if name == "flash sold_out" and result.checks["gate_script_calls"] > 0.01 * result.requests + 30:
                result.problems.append("check: sold-out attempts ran the gate script (the sold-out flag did not hold)")
            if name == "flash limit_reached" and result.checks["gate_script_calls"] > 0.25 * result.requests + 4 * len(
                buyers
            ):
                result.problems.append(
                    "check: limit_reached attempts ran the gate script (the limit memo did not hold)"
                )
            summaries[name].runs.append(result)
            flags = (["locust CPU warning"] if result.locust_cpu_warning else []) + result.problems
            flags += [f"{result.all_failures} failures"] if result.all_failures else []
            print(
                f"round {r + 1}/{rounds} {name:<20} {result.rps:7.0f} req/s  p50 {result.p50:.0f} p95 {result.p95:.0f}"
                f" p99 {result.p99:.0f} ms  gate scripts +{result.checks['gate_script_calls']:.0f}  {'; '.join(flags)}",
                flush=True,
            )
    s = list(summaries.values())
    for a in s[1:]:
        ratio = a.median("rps") / s[0].median("rps")
        extra_notes.append(
            f"Target (at least 0.7 of cached /api/home) for {a.config}: **{'met' if ratio >= 0.7 else 'NOT met'}** "
            f"({ratio:.2f}; p50 {a.median('p50'):.0f} vs {s[0].median('p50'):.0f} ms)."
        )
    comparisons = [
        compare("**sold_out** / cached /api/home (target at least 0.7)", s[1], s[0], fmt="{:.2f}"),
        compare("**limit_reached** / cached /api/home (target at least 0.7)", s[2], s[0], fmt="{:.2f}"),
    ]
    checks.append(check_sale(app, sold_out_sale, 1, 1, [first[3]]))
    checks.append(check_sale(app, limit_sale, 1_000_000, 1, [r[3] for r in first_buys]))
    return s, comparisons, checks, extra_notes


# ---------------------------------------------------------------------- part 2: one burst
def burst(app, stack, buyers, raw: Path, stock: int, threads: int) -> dict:
    origin = stack.settings.origin_url
    sale_id = make_sale(app, stock)
    attempts = [c for _, c in buyers] * 2
    random.Random(7).shuffle(attempts)
    samples: list[tuple[float, int, int]] = []  # (seconds since start, accepted so far, written so far)
    stop = threading.Event()
    t0 = time.monotonic()

    def sampler() -> None:
        while not stop.is_set():
            t = time.monotonic()
            left = gate_stock(app, sale_id)
            written = sql(app, "SELECT COUNT(*) FROM flash_orders WHERE sale_id = :s AND status = 'confirmed'",
                          s=sale_id)[0][0]  # fmt: skip
            samples.append((round(t - t0, 3), stock - (left if left is not None else stock), written))
            stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(lambda c: buy(origin, c, sale_id), attempts))
    burst_s = time.monotonic() - started
    drained = wait_drained(app, sale_id)
    time.sleep(0.5)
    stop.set()
    thread.join()
    codes: dict[str, int] = {}
    for _, status, code, _ in answers:
        codes[f"{status} {code}".strip()] = codes.get(f"{status} {code}".strip(), 0) + 1
    accepted_ids = [a[3] for a in answers if a[1] == 202]
    check = check_sale(app, sale_id, stock, 1, accepted_ids)
    check["drained"] = drained
    check["ok"] = check["ok"] and drained and set(codes) <= {"202", "409 sold_out", "409 limit_reached"}
    # Per-second rates from the 100 ms samples, in full 1-second bins from the first attempt.
    start = started - t0
    rates, figures = burst_rates(samples, start, start + burst_s, stock, check["confirmed_units"])
    bins, acc_rate, wr_rate = rates["bins"], rates["accepted"], rates["written"]
    result = {
        "sale_id": sale_id,
        "stock": stock,
        "buyers": len(buyers),
        "attempts": len(attempts),
        "client_threads": threads,
        "burst_seconds": round(burst_s, 2),
        "attempts_per_s": round(len(attempts) / burst_s, 1),
        "answers": codes,
        **figures,
        "check": check,
    }
    per_second = {"bins_s": [round(b - start, 3) for b in bins], "accepted": acc_rate, "written": wr_rate}
    (raw / "burst-samples.json").write_text(
        json.dumps({"start_s": start, "samples": samples, "per_second": per_second, "summary": result}, indent=1) + "\n"
    )
    chart(raw / "burst.png", samples, start, bins, acc_rate, wr_rate, result)
    return result


def chart(path: Path, samples, start, bins, acc_rate, wr_rate, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s[0] - start for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.plot(t, [s[1] for s in samples], label="accepted at the gate (stock - gate stock)")
    top.plot(t, [s[2] for s in samples], label="written by the orders queue (confirmed rows)")
    top.set_ylabel("orders, cumulative")
    top.set_title(
        f"Flash burst: {result['attempts']} attempts by {result['buyers']} buyers, stock {result['stock']} "
        "(sampled every 100 ms)"
    )
    top.legend()
    top.grid(alpha=0.3)
    x = [b - start for b in bins]
    bottom.step(x, acc_rate, where="post", label="accepted/s")
    bottom.step(x, wr_rate, where="post", label="written/s")
    bottom.set_xlabel("seconds since the first attempt")
    bottom.set_ylabel("per second (full 1 s bins)")
    if result.get("peak_shaved") is not None:
        bottom.set_title(
            f"peak shaved {result['peak_shaved']:.1f}x: busiest second accepted {result['peak_accepted_per_s']}/s, "
            f"busiest second written {result['peak_written_per_s']}/s",
            fontsize=10,
        )
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


QUICK = {  # BENCH_QUICK=1: the whole runner in about 2 minutes (half of it the stack's start)
    "BENCH_SECONDS": "2", "BENCH_ROUNDS": "1", "BENCH_REJECTION_BUYERS": "50", "BENCH_BURST_BUYERS": "200",
    "BENCH_BURST_STOCK": "100", "BENCH_BURST_THREADS": "16", "BENCH_RUSH_STOCK": "40", "BENCH_RUSH_BUYERS": "200",
}  # fmt: skip


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"

    def knob(name: str, default: str) -> int:
        return int(os.environ.get(name) or (QUICK.get(name) if quick else None) or default)

    users = knob("BENCH_USERS", "16")
    seconds = knob("BENCH_SECONDS", "10")
    rounds = knob("BENCH_ROUNDS", "3")
    rejection_buyers = knob("BENCH_REJECTION_BUYERS", "200")
    burst_buyers = knob("BENCH_BURST_BUYERS", "2000")
    burst_stock = knob("BENCH_BURST_STOCK", "1500")
    threads = knob("BENCH_BURST_THREADS", "32")
    rush_stock = knob("BENCH_RUSH_STOCK", "150")
    rush_buyers = knob("BENCH_RUSH_BUYERS", "2000")
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    # A quick run keeps its raw files apart, so it never wipes a full run's (the report and JSON are
    # written as usual, marked quick; docs/benchmarks.md keeps the published run's figures).
    raw_name = "bench-flash-quick" if quick else "bench-flash"
    raw = raw_dir(raw_name)
    overrides = {**OVERRIDES, **({"BREAKWATER_PAGES_BUILD_ON_START": "0"} if quick else {})}
    stack, tmp = start_private_stack(overrides=overrides)
    os.environ.update({k: v for k, v in stack.settings.child_env().items() if k.startswith("BREAKWATER_")})
    from breakwater.app import create_app
    from breakwater.extensions import db

    app = create_app(stack.settings)
    print(f"stack up after {time.monotonic() - started:.0f} s", flush=True)
    try:
        buyers = make_buyers(app, 1 + rejection_buyers + max(burst_buyers, rush_buyers))
        summaries, comparisons, checks, extra = rejection_path(
            app, stack, buyers[: rejection_buyers + 1], raw, Path(tmp.name), users, seconds, rounds
        )
        print(f"sold out, answered upstream (wrk) ... ({time.monotonic() - started:.0f} s)", flush=True)
        upstream = sold_out_upstream(app, stack, buyers[:2], raw, **upstream_knobs(quick, rounds))  # part 4
        print(f"purchase paths ... ({time.monotonic() - started:.0f} s)", flush=True)
        path_summaries, path_comparison, path_checks, path_runs = purchase_paths(
            app, stack, buyers[rejection_buyers + 1 :][:rush_buyers], raw, Path(tmp.name), users, seconds, rounds,
            rush_stock,
        )  # fmt: skip
        print(f"burst ... ({time.monotonic() - started:.0f} s)", flush=True)
        b = burst(app, stack, buyers[rejection_buyers + 1 :][:burst_buyers], raw, burst_stock, threads)
        print(json.dumps(b, indent=1), flush=True)
    finally:
        db.dispose()
        stack.down(quiet=True, kill=True)
        tmp.cleanup()
    summaries += path_summaries
    comparisons.append(path_comparison)
    checks += path_checks
    checks.append(b["check"])
    up_summaries, up_comparison, up_checks, up_figures = upstream
    summaries += up_summaries
    comparisons.append(up_comparison)
    load_after = os.getloadavg()[0]
    path_lines = purchase_notes(path_runs, path_summaries, rush_stock, rush_buyers, users, seconds)
    answers = ", ".join(f"{k}: {v}" for k, v in sorted(b["answers"].items()))
    notes = [
        "",
        *[f"{n}\n" for n in extra],
        f"Rejection path: Locust FastHttpUser x{users}, {seconds}s per run, {rounds} interleaved rounds "
        f"(home, sold_out, limit_reached, then reversed), through the stack's Nginx origin to its gunicorn, the "
        f"origin microcache off (BREAKWATER_ORIGIN_MICROCACHE=0) so /api/home is served by the app's cache, not "
        f"by Nginx. {rejection_buyers} signed-in buyers (bulk-inserted, session cookies signed with the app's "
        f"key) dealt out to the users, each on a connection of its own from a 127/8 address of its own and at most "
        f"{REJECTION_BUYER_RATE} attempts a second; each attempt has a fresh Idempotency-Key. sold_out: a 1-unit "
        "sale already bought, answered by the origin from the sale's marker (see the part answered upstream "
        "below; the in-process sold-out flag until it is there; checked: the gate script barely ran); "
        "limit_reached: a 1,000,000-unit sale each buyer already bought their one unit of, answered from the web "
        "process's memo of buyers at their limit (each process asks the gate once per buyer, then forgets only "
        "on an `unlimit` event or after 60 s; checked: the gate script ran for few attempts). Both still read "
        "the buyer's idempotency record (one Redis GET), so a retry of an accepted order gets its 202. Any other "
        "answer (a 202, a 429) is a failed request.",
        "",
        "**Default limits** (none raised): Nginx's writes per address (20 r/s, burst 40), the app's "
        "FLASH_USER_RATE per buyer (5/second) and FLASH_ADDRESS_RATE per address (20/second). Every simulated "
        "buyer sends from a 127/8 address of its own (never 127.0.0.1, the edge's), within its own limits: the "
        "load is many buyers, as in a real rush, and a 429 would be a failed request.",
        "",
        f"**Burst** ({b['buyers']} buyers x 2 attempts = {b['attempts']}, shuffled, stock {b['stock']}, limit 1, "
        f"{b['client_threads']} client threads with requests through Nginx, each attempt on a new connection from "
        f"its buyer's own address): the attempts took {b['burst_seconds']} s "
        f"({b['attempts_per_s']}/s); answers {answers}. The gate had accepted all {b['stock']} units "
        f"{b['accepted_at_gate_s']} s after the first attempt; the orders queue had written them all after "
        f"{b['all_written_s']} s.",
        "",
        "| burst | per second |",
        "|---|---|",
        f"| peak accepted at the gate (1 s bins) | **{b['peak_accepted_per_s']}** |",
        f"| peak written by the orders queue (1 s bins) | {b['peak_written_per_s']} |",
        f"| written while writing (confirmed / first-to-last write) | **{b['written_per_s_while_writing']}** |",
        f"| written, full 1 s bins while writing (min-max) | {b['written_per_s_full_seconds_min_max'][0]}-"
        f"{b['written_per_s_full_seconds_min_max'][1]} |",
        f"| written, median of full 1 s bins while the attempts ran / after they ended | "
        f"{b['written_per_s_median_while_attempts_ran']} / {b['written_per_s_median_after_attempts_ended']} |",
        "",
        f"{peak_shaved_text(b)}. Chart: `{RESULTS_REL}/{raw_name}/burst.png` (cumulative and per "
        "second), samples every 100 ms (gate stock key on the broker Redis, `COUNT(*)` of confirmed `flash_orders` "
        f"on the primary) in `{RESULTS_REL}/{raw_name}/burst-samples.json`. The client, the stack and the "
        "sampler share the machine's 2 cores, so the burst's accepted/s is bounded by the client too.",
        "",
        "The queue's written/s is not flat in the chart: while the attempts run, the web tier, Nginx, the client "
        "and the `orders` worker share the 2 cores, and the worker writes at the lower rate; once the attempts "
        "end it speeds up. Accepted requests wait in the gate (`pending`) meanwhile; none is lost (checks below).",
        "",
        *upstream_notes(up_figures, up_comparison),
        *path_lines,
        f"Machine: {os.cpu_count()} cores shared with whatever else runs; load average (1 min) {load_before:.1f} "
        f"at the start, {load_after:.1f} at the end of the run.",
        "",
        "Correctness, every sale of the run (checked once its accepted requests were written):",
        "",
        *[f"- {check_line(c)}" for c in checks],
        *[f"- {upstream_check_line(c)}" for c in up_checks],
        "",
    ]
    if quick:
        notes[:0] = [
            "",
            f"**QUICK run** (BENCH_QUICK=1: {seconds}s per Locust run, {rounds} round, small sales and bursts, "
            f"{time.monotonic() - started:.0f} s in all): a check that the runner and the flash sale work, not a "
            "measurement; `make bench-flash` without it gives figures to publish. Raw files of this "
            f"run: `{RESULTS_REL}/{raw_name}/`.",
        ]
    meta = {
        "users": users, "seconds": seconds, "rounds": rounds, "overrides": overrides, "burst": b, "checks": checks,
        "quick": quick, "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_start_end": [round(load_before, 2), round(load_after, 2)],
        "raw_dir": f"{RESULTS_REL}/{raw_name}",
        "upstream": {**up_figures, "checks": up_checks},
        "purchase_paths": {
            "stock": rush_stock, "buyers": rush_buyers, "runs": path_runs,
            "per_path": {
                s.config: {"rps_median": s.median("rps"), "p50": s.median("p50"), "p95": s.median("p95"),
                           "p99": s.median("p99"), "flags": s.flags()}
                for s in path_summaries
            },
            "database_over_gate_rps": path_comparison.ratio,
            "all_checks_pass": all(c["ok"] for c in path_checks),
        },
    }  # fmt: skip
    title = (
        "Flash sale: the rejection path vs cached /api/home, sold out answered upstream, the gate vs a "
        "database-only path, one burst"
    )
    path = write_report("bench-flash", title + (" (QUICK run)" if quick else ""), summaries, notes, comparisons, meta)
    if not quick:
        update_readme("bench-flash", path.read_text())
    print(path.read_text())
    return 0 if all(c["ok"] for c in checks + up_checks) else 1


if __name__ == "__main__":
    sys.exit(main())
