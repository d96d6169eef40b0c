"""`make bench-db`: what does the read/write router cost on a read-heavy endpoint?

Starts a private stack and three extra single-worker gunicorns on the same databases, and drives
GET /api/auth/me on each configuration in turn with Locust, interleaved A B C D, D C B A, ...:

* plain          - one plain engine bound to replica1 (BREAKWATER_DB_ROUTING=0), the baseline;
* router-1       - the RoutingSession restricted to that same replica (BREAKWATER_DB_REPLICAS=replica1),
                   so router-1 / plain is the router's overhead, like for like;
* router-1+token - the same server, every request carrying a signed causal token from a real write
                   (X-Causal-Token), so the causal check runs on every read;
* router-2       - the router over both replicas: the spread, reported as a gain over router-1.

Every run is checked against the servers' own counters: Com_select on each replica (the plain engine
has no router metrics) and the router's breakwater_db_statements_total. Writes
loadtests/results/bench-db.{md,json} and the raw Locust files in loadtests/results/bench-db/ (BENCH_QUICK=1:
loadtests/results/quick/); `make bench-publish` sets its table in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from pathlib import Path

from benchlib import (
    AppServer,
    Summary,
    compare,
    delta,
    knob,
    raw_dir,
    run_locust,
    scrape,
    start_private_stack,
    total,
    update_readme,
    write_report,
)
from sqlalchemy import create_engine, text
from werkzeug.security import generate_password_hash

SCENARIO = Path(__file__).parent / "scenarios" / "db_read.py"
ENDPOINT = "/api/auth/me"
ACCOUNTS = 64
PASSWORD = "bench-password"
STATEMENTS = "breakwater_db_statements_total"


def create_accounts(stack) -> None:
    s = stack.settings
    host, port = s.primary_address
    engine = create_engine(s.database_url(host, port))
    hashed = generate_password_hash(PASSWORD)
    with engine.begin() as conn:
        for i in range(ACCOUNTS):
            conn.execute(
                text("INSERT IGNORE INTO users (name, password_hash, role) VALUES (:n, :h, 'visitor')"),
                {"n": f"bench{i:04d}", "h": hashed},
            )
    engine.dispose()


def causal_token(url: str) -> str:
    """A real write through the router (registering an account) and the signed token it hands back."""
    body = json.dumps({"name": f"benchtoken{int(time.time())}", "password": PASSWORD}).encode()
    req = urllib.request.Request(
        f"{url}/api/auth/register", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token = resp.headers.get("X-Causal-Token")
    if not token:
        raise RuntimeError("registering an account returned no X-Causal-Token; the causal variant cannot run")
    return token


class ReplicaSelects:
    """Com_select of each replica, read over the monitor user: which replica served the reads."""

    def __init__(self, stack) -> None:
        s = stack.settings
        self.engines = {
            f"replica{i}": create_engine(s.database_url(h, p, "DB_MONITOR_USER"))
            for i, (h, p) in enumerate(s.replica_addresses, start=1)
        }

    def read(self) -> dict[str, float]:
        out = {}
        for name, engine in self.engines.items():
            with engine.connect() as conn:
                row = conn.execute(text("SHOW GLOBAL STATUS LIKE 'Com_select'")).one()
            out[f"com_select:{name}"] = float(row[1])
        return out

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


def verify(config: str, requests: int, moved: dict[str, float], seconds: float = 15) -> list[str]:
    """Problems when the run was not served the way ``config`` claims."""
    r1, r2 = moved.get("com_select:replica1", 0), moved.get("com_select:replica2", 0)
    routed = total(moved, STATEMENTS)
    routed_r1 = total(moved, STATEMENTS, node="replica1", reason="read") + total(
        moved, STATEMENTS, node="replica1", reason="causal_wait"
    )
    fallback = total(moved, STATEMENTS, reason="fallback_primary") + total(moved, STATEMENTS, reason="spill_capped")
    # Stray SELECTs on the other replica: every app process's replication monitor checks each replica twice a
    # second (about ten processes here), which short runs (BENCH_QUICK=1) must allow for too.
    need, stray = 0.9 * requests, max(0.05 * requests, 50, 20 * seconds)
    problems = []
    if config in ("plain", "router-1", "router-1+token") and (r1 < need or r2 > stray):
        problems.append(f"check: expected reads on replica1 only; Com_select replica1 +{r1:.0f}, replica2 +{r2:.0f}")
    if config == "plain" and routed:
        problems.append(f"check: the plain server routed {routed:.0f} statements (it should have no router)")
    if config.startswith("router-1") and routed_r1 < need:
        problems.append(f"check: the router sent only {routed_r1:.0f} reads to replica1 for {requests} requests")
    if config == "router-2":
        r1_routed = total(moved, STATEMENTS, node="replica1", reason="read")
        r2_routed = total(moved, STATEMENTS, node="replica2", reason="read")
        if min(r1_routed, r2_routed) < 0.3 * requests:
            problems.append(f"check: reads not spread over both replicas ({r1_routed:.0f} / {r2_routed:.0f})")
    if config.startswith("router") and fallback:
        problems.append(f"check: {fallback:.0f} reads fell back to the primary or spilled")
    return problems


def main() -> int:
    users = knob("BENCH_USERS", 16, 16)
    seconds = knob("BENCH_SECONDS", 15, 4)  # each run starts with 16 logins (scrypt): a few seconds
    rounds = knob("BENCH_ROUNDS", 3, 1)
    raw = raw_dir("bench-db")
    stack, tmp = start_private_stack()
    host, port = stack.settings.replica_addresses[0]
    plain = AppServer("plain", stack, {"BREAKWATER_DB_ROUTING": "0"})
    router1 = AppServer("router-1", stack, {"BREAKWATER_DB_ROUTING": "1", "BREAKWATER_DB_REPLICAS": f"{host}:{port}"})
    router2 = AppServer("router-2", stack, {"BREAKWATER_DB_ROUTING": "1"})
    servers = [plain, router1, router2]
    selects = ReplicaSelects(stack)
    base_env = {"BENCH_ACCOUNTS": str(ACCOUNTS), "BENCH_PASSWORD": PASSWORD}
    summaries: dict[str, Summary] = {}
    try:
        create_accounts(stack)
        for srv in servers:
            srv.start()
        token = causal_token(router1.url)
        time.sleep(2)  # let the replicas apply the write and the monitor see it: the common, covered case
        configs = [
            ("plain", plain, base_env),
            ("router-1", router1, base_env),
            ("router-1+token", router1, {**base_env, "BENCH_CAUSAL_TOKEN": token}),
            ("router-2", router2, base_env),
        ]
        for name, _, _ in configs:
            summaries[name] = Summary(name)
        for r in range(rounds):
            for name, srv, env in configs if r % 2 == 0 else list(reversed(configs)):
                before = {**scrape(srv.url), **selects.read()}
                result = run_locust(
                    name, SCENARIO, srv.url, users, seconds, ENDPOINT, env,
                    raw=raw, run_id=f"r{r + 1}-{name}", round_no=r + 1,
                )  # fmt: skip
                result.checks = delta(before, {**scrape(srv.url), **selects.read()})
                result.problems += verify(name, result.requests, result.checks, seconds)
                summaries[name].runs.append(result)
                flags = [f for f in ("locust CPU warning" if result.locust_cpu_warning else "",) if f]
                flags += result.problems + ([f"{result.all_failures} failures"] if result.all_failures else [])
                print(
                    f"round {r + 1}/{rounds} {name:<15} {result.rps:8.0f} req/s  p95 {result.p95:.0f} ms"
                    f"  {'; '.join(flags)}",
                    flush=True,
                )
    finally:
        selects.dispose()
        for srv in servers:
            srv.stop()
        stack.down(quiet=True, kill=True)
        tmp.cleanup()
    s = summaries
    comparisons = [
        compare("Router overhead, router-1 / plain (same single replica)", s["router-1"], s["plain"]),
        compare("Causal check, router-1+token / router-1", s["router-1+token"], s["router-1"]),
        compare("router-1+token / plain", s["router-1+token"], s["plain"]),
        compare("Spread gain, router-2 / router-1 (two replicas vs one)", s["router-2"], s["router-1"]),
    ]
    notes = [
        f"GET {ENDPOINT} (one primary-key SELECT), Locust FastHttpUser x{users}, {seconds}s per run, {rounds} runs "
        "per configuration, interleaved; one gunicorn worker with 4 threads per configuration, straight to "
        "gunicorn (no Nginx); req/s counts successful requests only.",
        "plain = one Session bound to replica1 (BREAKWATER_DB_ROUTING=0); router-1 = RoutingSession (replica "
        "choice, monitor, causal-token check) with BREAKWATER_DB_REPLICAS set to replica1 only; router-1+token = "
        "the same server, each request sending X-Causal-Token from a real write (already applied by the replica, "
        "so the check passes without waiting); router-2 = the router over both replicas. All databases share "
        "the same 2 cores, so a second replica adds no hardware here.",
        "Checked on every run: Com_select on each replica (reads on replica1 only for plain and router-1*), the "
        "router's own statement counters (none for plain; replica1 for router-1*; both replicas for router-2; no "
        "fallback to the primary), and for router-1+token that every response hands the token back. Runs where "
        "Locust warned about its own CPU are not used unless all were flagged (then the row says so).",
    ]
    meta = {"users": users, "seconds": seconds, "rounds": rounds, "endpoint": ENDPOINT}
    path = write_report("bench-db", "Read/write router overhead", list(s.values()), notes, comparisons, meta)
    update_readme("bench-db", path.read_text())
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
