"""`make bench` (`make bench QUICK=1`): every benchmark runner, one after another, headless, into one report.

Starts one private stack for all runners (the union of the settings they ask for: the origin's microcache off;
every limit at its default), then runs bench_static, bench_cache, bench_db,
bench_workers, bench_queue, bench_flash and bench_spike as subprocesses with BENCH_SHARED_STACK naming that stack
(a runner whose settings the stack lacks starts its own; bench_spike always does: it restarts the edge), each
writing loadtests/results/<name>.json as it does alone.
The report (loadtests/report.py) goes to loadtests/results/<timestamp>/report.md and report.html, with charts,
copies of every runner's report and raw files, each runner's log, and readme-table.md (the composite table
`make bench-publish` puts in docs/benchmarks.md). loadtests/results/ is ignored by git; nothing tracked changes.

BENCH_QUICK=1: shorter runs and fewer repeats in every runner, two runners at a time (QUICK_LANES), all of it in
loadtests/results/quick/ (a quick run never replaces a full run's results).
BENCH_ONLY=static,cache: only those runners (the report then says which sections were not run).
BENCH_PRIVATE_STACKS=1: every runner starts its own stack.
`python report.py` recomposes a report from the results already in loadtests/results/.

Each runner runs in a session of its own; Ctrl-C (or SIGTERM) here is passed on to the running ones, which stop
what they started; one that has not finished after RUNNER_STOP_SECONDS is killed, and when this process exits
it kills whatever any of them left (benchlib: every process of the run carries its BENCH_RUN_ID).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import QUICK, RESULTS, SHARED_STACK, start_private_stack
from report import RUNNERS, compose

HERE = Path(__file__).parent
#: in this order: the stack is freshest for the homepage figures; the flash sale's buyers and orders come last
#: what the runners ask of a stack (bench_static, bench_flash: microcache off); every limit keeps its default
#: (bench_flash's buyers each send from an address of their own)
SHARED_OVERRIDES = {
    "BREAKWATER_ORIGIN_MICROCACHE": "0",
    # nothing the benchmarks leave running needs the default 30 s to finish when the stack stops
    "BREAKWATER_WORKER_SHUTDOWN_TIMEOUT": "5",
}


#: BENCH_QUICK=1 runs these two lanes side by side, each runner after the other within its lane, so the whole
#: check takes about three minutes. The lanes do not disturb each other's checks: only bench-static publishes
#: (rebuilds, purges), bench-queue's workers and queues are its own, and bench-spike has a stack of its own. Its
#: figures are no measurement anyway.
QUICK_LANES = [
    ["bench-static", "bench-queue", "bench-spike"],
    ["bench-cache", "bench-db", "bench-workers", "bench-flash"],
]

#: A full `make bench` runs a few runners with shorter runs than they use alone (still three interleaved rounds),
#: so that the whole run stays under 30 minutes; a value set in the environment wins.
FULL_RUN = {
    "bench-static": {"BENCH_SECONDS": "8"},
    "bench-cache": {"BENCH_SECONDS": "6"},
    "bench-db": {"BENCH_SECONDS": "10"},
    "bench-workers": {"BENCH_SECONDS": "6"},
    "bench-queue": {"BENCH_BLOCK_SECONDS": "16"},
}


#: after Ctrl-C, how long a runner may take to stop its stack and servers before it is killed
RUNNER_STOP_SECONDS = 90
#: set once the run is interrupted: no further runner starts
STOP = threading.Event()
_running: dict[str, subprocess.Popen] = {}
_running_lock = threading.Lock()


def run_runner(name: str, out: Path, env: dict[str, str]) -> dict:
    script = HERE / (name.replace("-", "_") + ".py")
    knobs = {} if QUICK else {k: v for k, v in FULL_RUN.get(name, {}).items() if not os.environ.get(k)}
    env = {**env, **knobs}
    log = out / "logs" / f"{name}.log"
    started = time.time()
    with log.open("w") as fh, _running_lock:
        if STOP.is_set():
            return {"status": "not run (interrupted)", "seconds": 0.0, "exit_code": None, "fresh": False,
                    "knobs": knobs}  # fmt: skip
        print(f"== {name} ...", flush=True)
        # A session of its own: a Ctrl-C reaches it once, from stop_runners, not twice (terminal and us)
        proc = subprocess.Popen(
            [sys.executable, str(script)], cwd=HERE, env=env, stdout=fh, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        _running[name] = proc
    try:
        proc.wait()
    finally:
        with _running_lock:
            _running.pop(name, None)
    seconds = time.time() - started
    result = RESULTS / f"{name}.json"
    fresh = result.exists() and result.stat().st_mtime >= started
    if proc.returncode == 0 and fresh:
        status = "ok"
    elif fresh:
        status = f"exit {proc.returncode} (results written; see its log)"
    else:  # older results must not pass as this run's: the report leaves them out
        status = f"failed, exit {proc.returncode}, no new results (see logs/{name}.log)"
    print(f"== {name}: {status} in {seconds:.0f} s", flush=True)
    return {"status": status, "seconds": seconds, "exit_code": proc.returncode, "fresh": fresh, "knobs": knobs}


def stop_runners(signum: int = signal.SIGINT) -> None:
    """After Ctrl-C or SIGTERM: no runner starts any more; each running one gets ``signum`` (its process
    group: the runner, its Locust and wrk) and RUNNER_STOP_SECONDS to stop what it started, then SIGKILL."""
    with _running_lock:
        STOP.set()
        running = list(_running.items())
    for name, proc in running:
        print(f"== stopping {name} (pid {proc.pid})", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
    deadline = time.monotonic() + RUNNER_STOP_SECONDS
    for name, proc in running:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"== {name} did not stop within {RUNNER_STOP_SECONDS} s: killed", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def selected() -> list[str]:
    only = [f"bench-{n.strip().removeprefix('bench-').removeprefix('bench_')}"
            for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()]  # fmt: skip
    unknown = sorted(set(only) - set(RUNNERS))
    if unknown:
        raise SystemExit(f"BENCH_ONLY names unknown runners {unknown}; choose from {', '.join(RUNNERS)}.")
    return [r for r in RUNNERS if not only or r in only]


def main() -> int:
    runners = selected()
    out = RESULTS / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (out / "logs").mkdir(parents=True)
    started = time.time()
    env = dict(os.environ)
    stack = tmp = None
    start_s = stop_s = 0.0  # starting and stopping the shared stack
    runs: dict[str, dict] = {}
    threads: list[threading.Thread] = []
    try:
        if os.environ.get("BENCH_PRIVATE_STACKS") != "1":
            print("== starting one private stack for all runners", flush=True)
            stack, tmp = start_private_stack(overrides=SHARED_OVERRIDES)
            env_file = Path(tmp.name) / "stack-env.json"
            env_file.write_text(json.dumps(stack.env))
            env[SHARED_STACK] = str(env_file)
            start_s = time.time() - started
        if QUICK:  # a check that everything works: two lanes at once (see QUICK_LANES)
            lanes = [[n for n in lane if n in runners] for lane in QUICK_LANES]
            threads = [
                threading.Thread(target=lambda lane=lane: runs.update({n: run_runner(n, out, env) for n in lane}))
                for lane in lanes
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            runs = {n: runs[n] for n in runners}  # in the report's order
        else:
            for name in runners:
                runs[name] = run_runner(name, out, env)
    except BaseException as exc:  # Ctrl-C, SIGTERM (benchlib makes it SystemExit) or a failure here
        print(f"== interrupted ({type(exc).__name__}): stopping the runners", flush=True)
        stop_runners(signal.SIGTERM if isinstance(exc, SystemExit) else signal.SIGINT)
        for t in threads:
            t.join()
        raise
    finally:
        if stack is not None:
            stopping = time.time()
            stack.down(quiet=True, kill=True)
            tmp.cleanup()
            stop_s = time.time() - stopping
    return compose(out, runs, time.time() - started, (start_s, stop_s))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("== interrupted: every runner stopped, no report composed", flush=True)
        sys.exit(130)
