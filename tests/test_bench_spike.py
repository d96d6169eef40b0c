"""`make bench-spike` works end to end in its smallest mode, on the test stack (no stack of its own): one round
of the cold crowd (100 connections for a second) beside a bare Varnish, and a spike of 1 to 10 visitors. It
writes its report and JSON with every field the report needs, leaves nothing running and the edge up again.
No figure is judged here: a busy test machine says nothing about the edge's performance.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

LOADTESTS = Path(__file__).resolve().parents[1] / "loadtests"
RESULTS = LOADTESTS / "results" / "quick"  # BENCH_QUICK=1 writes there (ignored by git)


def marked_pids(mark: str) -> list[int]:
    """Processes carrying this run's BENCH_RUN_ID (what the runner started and should have ended)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and f"BENCH_RUN_ID={mark}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def run_marked(mark: str) -> list[str]:
    out = []
    for pid in marked_pids(mark):
        with contextlib.suppress(OSError):
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return out


def test_the_spike_runner_writes_its_results_and_leaves_nothing_behind(stack, edge, tmp_path):
    env_file = tmp_path / "stack-env.json"
    env_file.write_text(json.dumps(stack.env))
    mark = f"spike-test-{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("BENCH_RUN_ID", "BENCH_SHARED_STACK")},
        "BENCH_QUICK": "1",
        "BENCH_RUN_ID": mark,  # set here: the runner then leaves the sweep to us, and we can look for leftovers
        "BENCH_SPIKE_STACK": str(env_file),
        "BENCH_ROUNDS": "1",
        "BENCH_WRK_SECONDS": "1",
        "BENCH_CONNECTIONS": "100",
        "BENCH_SPIKE_BASE": "1",
        "BENCH_SPIKE_WARM": "1",
        "BENCH_SPIKE_RAMP": "1",
        "BENCH_SPIKE_HOLD": "1",
        "BENCH_SPIKE_TAIL": "1",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "bench_spike.py"], cwd=LOADTESTS, env=env, capture_output=True, text=True, timeout=300
        )
        left = run_marked(mark)
    finally:
        for pid in marked_pids(mark):  # whatever the runner left (then the test fails below)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert not left, left

    data = json.loads((RESULTS / "bench-spike.json").read_text())
    assert data["quick"] is True
    configs = data["configs"]
    edge_cfg, bare_cfg = "cold edge, 1,000 connections at once", "bare Varnish 7.1, default settings, same page"
    assert set(configs) == {edge_cfg, bare_cfg}
    for name in (edge_cfg, bare_cfg):
        (run,) = configs[name]["runs"]
        assert run["requests"] > 0 and {"p50", "p95", "p99", "rps", "failures"} <= set(run)
        assert {"timeouts", "errors", "varnish_cache_hit"} <= set(run["checks"])
        assert Path(run["raw"]).name.startswith("wrk-r1-")

    meta = data["meta"]
    assert set(meta["edge_sizing"]) == {
        "thread_pools", "thread_pool_min", "thread_pool_max", "workspace_client", "workspace_backend", "listen_depth",
    }  # fmt: skip
    crowd = meta["cold_crowd"]
    assert {"edge_p99_ms", "bare_p99_ms", "p99_ratio", "p99_ratio_per_round", "timeouts", "errors", "met"} <= set(crowd)
    assert set(crowd["timeouts"]) == set(crowd["errors"]) == {edge_cfg, bare_cfg}

    spike = meta["spike"]
    assert spike["requests"] > 0 and spike["peak_users"] == 10
    for key in ("failures", "p50_ms", "p99_ms", "origin_share", "app_share", "edge_requests", "source_addresses"):
        assert spike[key] is not None, key
    assert spike["source_addresses"] >= 1
    assert spike["timeline"] and {"t", "users", "requests", "failures", "p50_ms", "p99_ms"} <= set(spike["timeline"][0])
    assert (RESULTS / "bench-spike" / "spike-timeline.png").stat().st_size > 0
    assert "# The edge under a sudden crowd" in (RESULTS / "bench-spike.md").read_text()

    # the runner restarted the test stack's edge; it is up again for the tests after this one
    assert stack.supervisor.processes()["edge"]["statename"] == "RUNNING"
    assert requests.get(f"{edge}/_edge/health", timeout=10).status_code == 200
