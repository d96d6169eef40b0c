"""`make bench-db`: what does the read/write router cost on a read-heavy endpoint?

Starts a private stack, two extra single-worker gunicorns on the same databases (A: the router,
B: one plain engine on a replica, BREAKWATER_DB_ROUTING=0) and drives GET /api/auth/me on each in
turn with Locust, interleaved A B B A ... Writes loadtests/results/bench-db.{md,json}.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchlib import AppServer, Summary, run_locust, start_private_stack, update_readme, write_report
from sqlalchemy import create_engine, text
from werkzeug.security import generate_password_hash

SCENARIO = Path(__file__).parent / "scenarios" / "db_read.py"
ACCOUNTS = 64
PASSWORD = "bench-password"


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


def routed_reads(url: str) -> float:
    """Reads the router sent to replicas, from the server's own /metrics (0 without the router)."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        body = resp.read().decode()
    pattern = r'breakwater_db_statements_total\{node="replica\d+",reason="read"\} ([0-9.e+]+)'
    return sum(float(v) for v in re.findall(pattern, body))


def main() -> int:
    users = int(os.environ.get("BENCH_USERS", "16"))
    seconds = int(os.environ.get("BENCH_SECONDS", "15"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    stack, tmp = start_private_stack()
    servers = [
        AppServer("router", stack, {"BREAKWATER_DB_ROUTING": "1"}),
        AppServer("plain", stack, {"BREAKWATER_DB_ROUTING": "0"}),
    ]
    summaries = {srv.name: Summary(srv.name) for srv in servers}
    try:
        create_accounts(stack)
        for srv in servers:
            srv.start()
        env = {"BENCH_ACCOUNTS": str(ACCOUNTS), "BENCH_PASSWORD": PASSWORD}
        for r in range(rounds):
            order = servers if r % 2 == 0 else list(reversed(servers))
            for srv in order:
                result = run_locust(srv.name, SCENARIO, srv.url, users, seconds, "/api/auth/me", env)
                summaries[srv.name].runs.append(result)
                print(
                    f"round {r + 1}/{rounds} {srv.name:<7} {result.rps:8.0f} req/s  p95 {result.p95:.0f} ms"
                    f"  failures {result.failures}{'  (locust CPU warning)' if result.locust_cpu_warning else ''}"
                )
        routed = {srv.name: routed_reads(srv.url) for srv in servers}
        if not (routed["router"] > 0 and routed["plain"] == 0):
            raise RuntimeError(f"the two configurations did not differ as intended: routed reads {routed}")
    finally:
        for srv in servers:
            srv.stop()
        stack.down(quiet=True)
        tmp.cleanup()
    router, plain = summaries["router"], summaries["plain"]
    ratio = router.median("rps") / plain.median("rps")
    notes = [
        f"Router throughput / plain engine throughput: **{ratio:.3f}** (overhead {100 * (1 - ratio):.1f}%).",
        f"Check: the router server sent {routed['router']:.0f} reads to replicas, the plain one "
        f"{routed['plain']:.0f} (it has no router).",
        f"GET /api/auth/me, Locust FastHttpUser x{users}, {seconds}s per run, {rounds} runs per configuration, "
        "interleaved; one gunicorn worker with 4 threads per configuration, straight to gunicorn (no Nginx).",
        "router = RoutingSession (replica choice, monitor, causal-token check); plain = one Session bound to "
        "replica1 (BREAKWATER_DB_ROUTING=0). Runs where Locust warned about its own CPU are not used.",
    ]
    path = write_report("bench-db", "Read/write router overhead", [router, plain], notes)
    update_readme("bench-db", path.read_text())
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
