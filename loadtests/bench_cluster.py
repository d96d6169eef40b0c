"""`make bench-cluster` (as root): what spreading the stack over hosts costs and buys on this machine.

Four stacks at once, identical but for their layout: the whole stack on one machine (loopback), and clusters of
network-namespace hosts with 1, 2 and 3 app hosts (`breakwater cluster`, 3, 4 and 5 hosts). Interleaved rounds
(A B C D, D C B A, ...) of Locust on each:

* the visitor scenario (loadtests/scenarios/visitor.py) through the edge: homepage, articles, categories,
  the region cascade, with a short reading pause; the figure is every successful request per second;
* /api/home through the origin (no microcache): every request reaches an app server, so this is the one that
  more app hosts could help.

This machine has two cores: every host shares them, so more app hosts cannot add throughput here; what the
figures show is the cost of the network path (veth pairs and a bridge instead of loopback) and of more
processes on the same cores. On real machines each app host brings its own cores.

Then the time from the primary's death to the first accepted write: editors' saves back to back while the
primary's mariadbd is killed (its supervisor frozen), once with `breakwater db promote` run at once by hand
(1-app-host cluster) and once with the watcher promoting after BREAKWATER_DB_FAILOVER_AFTER seconds (3 app hosts).
Writes loadtests/results/bench-cluster.{md,json} and raw Locust files in loadtests/results/bench-cluster/;
`make bench-publish RUN=bench-cluster` publishes it into docs/benchmarks/ and docs/benchmarks.md.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from benchlib import (
    RunResult,
    Summary,
    _percentile,
    _start_private_stack,
    compare,
    knob,
    publish_report,
    raw_dir,
    run_locust,
)

from breakwater_tools.stack import Stack

NAME = "bench-cluster"
HERE = Path(__file__).parent
VISITOR = HERE / "scenarios" / "visitor.py"
GETTER = HERE / "scenarios" / "get_path.py"
BIN = Path(sys.executable).parent
FAILOVER_AFTER = 2
LAYOUTS = {"one machine": 0, "1 app host": 3, "2 app hosts": 4, "3 app hosts": 5}
DRAFT = {"title": "Bench draft", "summary": "A summary", "category": "tech", "body": "Timing the failover."}


def start(label: str, hosts: int, index: int) -> tuple[Stack, object]:
    """One stack of the comparison on free ports (a cluster on a network of its own)."""
    extra = {"ORIGIN_MICROCACHE": "0", "LOG_LEVEL": "WARNING"}
    if hosts:
        extra.update(CLUSTER_HOSTS=str(hosts), CLUSTER_NETWORK=f"10.{210 + index}.0.0/24")
        if label == "3 app hosts":
            extra["DB_FAILOVER_AFTER"] = str(FAILOVER_AFTER)
    print(f"== starting {label}", flush=True)
    return _start_private_stack(print, {}, extra)


def run_visitors(label: str, host: str, users: int, seconds: int, *, raw: Path, run_id: str, round_no: int):
    """The visitor scenario; every successful request of the mix counts, percentiles over all of them."""
    prefix = raw / run_id
    cmd = [
        str(BIN / "locust"), "-f", str(VISITOR), "--headless", "-u", str(users), "-r", str(users),
        "-t", f"{seconds}s", "--host", host, "--reset-stats", "--only-summary", "--visitor-wait", "0.3",
        "--csv", str(prefix), "--json-file", str(prefix),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=seconds + 120)
    prefix.with_suffix(".log").write_text(proc.stderr)
    stats = json.loads(prefix.with_suffix(".json").read_text())
    requests_ = sum(s["num_requests"] for s in stats)
    failures = sum(s["num_failures"] for s in stats)
    elapsed = max(s["last_request_timestamp"] for s in stats) - min(s["start_time"] for s in stats)
    merged: dict[str, int] = {}
    for s in stats:
        for k, v in s["response_times"].items():
            merged[k] = merged.get(k, 0) + v
    return RunResult(
        config=label, round=round_no, requests=requests_, failures=failures, other_failures=0,
        rps=(requests_ - failures) / max(elapsed, 1e-9), p50=_percentile(merged, 0.5),
        p95=_percentile(merged, 0.95), p99=_percentile(merged, 0.99),
        locust_cpu_warning="CPU usage above" in proc.stderr or "CPU usage was too high" in proc.stderr,
        exit_code=proc.returncode, raw=str(prefix.relative_to(HERE.parent)),
    )  # fmt: skip


def editor_token(stack: Stack) -> str:
    result = subprocess.run(
        [str(BIN / "breakwater"), "user", "token", stack.settings["EDITOR_NAME"], "--label", "bench"],
        env=stack.settings.child_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"no editor token: {result.stderr.strip()[-300:]}")
    return result.stdout.strip().splitlines()[-1]


def time_failover(stack: Stack, manual: bool) -> dict[str, float]:
    """Seconds from the primary's death to the first write the site accepts again."""
    origin, token = stack.settings.origin_url, editor_token(stack)
    stop, accepted = threading.Event(), []

    def write() -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            while not stop.is_set():
                try:
                    code = http.post(
                        f"{origin}/api/editor/articles", json={**DRAFT, "slug": "b-" + uuid.uuid4().hex[:10]},
                        timeout=10,
                    ).status_code  # fmt: skip
                except requests.RequestException:
                    code = 0
                if code == 201:
                    accepted.append(time.monotonic())
                time.sleep(0.02)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    primary = stack.layout.primary
    try:
        deadline = time.monotonic() + 30
        while len(accepted) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        killed = time.monotonic()  # it answers nothing from the first signal on
        stack.supervisor.take_down(primary.name)  # frozen, killed, not restarted; supervisord keeps logging
        promote_s = float("nan")
        if manual:
            result = subprocess.run(
                [str(BIN / "breakwater"), "db", "promote"], env=stack.settings.child_env(), capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
            promote_s = time.monotonic() - killed
            if result.returncode != 0:
                raise RuntimeError(f"promote failed: {result.stderr.strip()[-300:]}")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not [t for t in accepted if t > killed]:
            time.sleep(0.05)
        first = next((t for t in accepted if t > killed), float("nan"))
    finally:
        stop.set()
        writer.join(timeout=15)
        stack.supervisor.bring_back(primary.name, wait=False)
    return {"first_write_s": round(first - killed, 2), "promote_command_s": round(promote_s, 2)}


def main() -> int:
    if os.geteuid() != 0:
        print("make bench-cluster creates network namespaces: run it as root (sudo make bench-cluster).")
        return 2
    users = knob("BENCH_USERS", 16, 16)
    seconds = knob("BENCH_SECONDS", 10, 3)
    rounds = knob("BENCH_ROUNDS", 3, 1)
    raw = raw_dir(NAME)
    stacks: dict[str, tuple[Stack, object]] = {}
    summaries: dict[str, Summary] = {}
    failover: dict[str, dict[str, float]] = {}
    try:
        for i, (label, hosts) in enumerate(LAYOUTS.items()):
            stacks[label] = start(label, hosts, i)
        order = list(LAYOUTS)
        for what in ("visitors via the edge", "/api/home via the origin"):
            for label in order:
                summaries[f"{what}: {label}"] = Summary(f"{what}: {label}")
            for r in range(rounds):
                for label in order if r % 2 == 0 else list(reversed(order)):
                    stack = stacks[label][0]
                    key, run_id = f"{what}: {label}", f"{'visit' if 'edge' in what else 'api'}-r{r + 1}-{label[0]}"
                    if "edge" in what:
                        result = run_visitors(key, stack.settings.edge_url, users, seconds, raw=raw, run_id=run_id,
                                              round_no=r + 1)  # fmt: skip
                    else:
                        result = run_locust(
                            key, GETTER, stack.settings.origin_url, users, seconds, "target",
                            {"BENCH_PATH": "/api/home"}, raw=raw, run_id=run_id, round_no=r + 1,
                        )  # fmt: skip
                    summaries[key].runs.append(result)
                    failed = f"  {result.all_failures} failures" if result.all_failures else ""
                    line = f"round {r + 1}/{rounds} {key:<44} {result.rps:8.0f} req/s  p99 {result.p99:.0f} ms"
                    print(line + failed, flush=True)
        failover["manual (`breakwater db promote` at once)"] = time_failover(stacks["1 app host"][0], manual=True)
        failover[f"automatic (watcher, FAILOVER_AFTER={FAILOVER_AFTER} s)"] = time_failover(
            stacks["3 app hosts"][0], manual=False
        )
        print(f"failover: {failover}", flush=True)
    finally:
        for stack, tmp in stacks.values():
            stack.down(quiet=True, kill=True)
            tmp.cleanup()

    comparisons = []
    for what in ("visitors via the edge", "/api/home via the origin"):
        base = summaries[f"{what}: one machine"]
        for label in list(LAYOUTS)[1:]:
            comparisons.append(compare(f"**{what}** {label} / one machine", summaries[f"{what}: {label}"], base,
                                       fmt="{:.2f}", extra="x"))  # fmt: skip
    rows = ["", "| primary killed, then | first accepted write after (s) | promote command took (s) |", "|---|---|---|"]
    for k, v in failover.items():
        took = v["promote_command_s"]
        rows.append(f"| {k} | {v['first_write_s']} | {'-' if math.isnan(took) else took} |")
    notes = [
        *rows,
        "",
        "**This machine has 2 cores, shared by every host: more app hosts cannot add throughput here.** The "
        "ratios are the price of the network path (veth pairs and a bridge instead of loopback, the edge and the "
        "origin on other hosts than the app) and of more processes on the same cores; on real machines each app "
        "host brings its own cores and the origin's upstream spreads over them.",
        f"Locust FastHttpUser x{users}, {seconds}s per run, {rounds} interleaved round(s), all four stacks up "
        "at once. Visitors: the visitor scenario with a reading pause of up to 0.3 s, through the edge (mostly "
        "edge hits and emitted pages): their rate is set by that pause, so the same everywhere, and the network "
        "path shows in the tail latency; /api/home: the Redis-cached homepage data through the origin, no microcache, "
        "so every request is balanced over the app hosts.",
        "Failover: editors' saves back to back; the primary's mariadbd SIGKILLed with its supervisor frozen (the "
        "host's database is gone); the first save answered 201 afterwards is timed. One sample each.",
    ]
    meta = {"users": users, "seconds": seconds, "rounds": rounds, "layouts": LAYOUTS, "failover": failover}
    publish_report(NAME, "Several hosts on one machine: the network path and failover time", list(summaries.values()),
                   notes, comparisons, meta)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
