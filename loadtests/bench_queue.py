"""`make bench-queue`: queue blocking and its cure, pools for I/O-bound work, RabbitMQ against Redis.

Runs against a private stack's RabbitMQ node and broker Redis, with the benchmark's own tiny Celery
app (queue_tasks.py) so that only queueing is measured:

1. Queue blocking: short tasks (20 ms) at a steady 10/s mixed with long tasks (5 s) every 4 s, for
   BLOCK_SECONDS, on two single-process workers. (a) Celery's defaults: one queue, prefetch 4, early
   ack (Celery 5's default -O is already fair); (b) the seed's fix: prefetch 1, late ack, -O fair;
   (c) Breakwater's layout: the long tasks in a queue of their own, each queue with its own worker.
   Reported: the short tasks' queue wait (start minus send) p50/p95/max; a short task not started within
   120 s of the last one sent is unfinished: counted, and infinitely late in those figures (never dropped).
2. Pools for I/O-bound work: a task that waits 100 ms on a local HTTP endpoint; prefork -c2, threads
   -c50, gevent -c200, eventlet -c200 (if it runs with the installed Celery). Tasks are queued first;
   tasks/s = tasks / (last end - first start).
3. Brokers: a trivial task through RabbitMQ and Redis (publish rate with confirms, consume rate on one
   prefork -c2 worker), and the time until a task whose worker was SIGKILLed starts again.

Writes loadtests/results/bench-queue.{md,json} (every sample kept in the JSON; BENCH_QUICK=1: in results/quick/).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
from benchlib import QUICK, QUICK_NOTE, RESULTS, RESULTS_REL, knob, start_private_stack, update_readme
from celery import Celery

HERE = Path(__file__).parent
CELERY = str(Path(sys.executable).parent / "celery")
BLOCK_SECONDS = knob("BENCH_BLOCK_SECONDS", 24.0, 4.0)
BLOCK_ROUNDS = knob("BENCH_BLOCK_ROUNDS", 2, 1)
REDELIVERY_WAIT = 200.0  # Redis: visibility timeout (20 s here) + kombu's restore scan (every 10th 10 s tick)


def pct(values: list[float], q: float, unfinished: int = 0) -> float:
    """The q-quantile of ``values`` and of ``unfinished`` samples that never finished, counted as infinitely
    late (a task that never ran is the worst wait, not a dropped sample): inf when the quantile falls among
    them, nan when there is no sample at all."""
    n = len(values) + unfinished
    if not n:
        return float("nan")
    s = sorted(values) + [float("inf")] * unfinished
    return s[min(n - 1, round(q * (n - 1)))]


def wait_summary(waits_ms: list[float], sent: int) -> dict:
    """The short tasks' queue waits of one run (or of several runs' pooled samples): every task sent and not
    seen starting counts as unfinished, infinitely late in p50/p95/max."""
    unfinished = max(0, sent - len(waits_ms))
    return {
        "short_sent": sent,
        "short_done": len(waits_ms),
        "short_unfinished": unfinished,
        "p50_ms": pct(waits_ms, 0.5, unfinished),
        "p95_ms": pct(waits_ms, 0.95, unfinished),
        "max_ms": float("inf") if unfinished else max(waits_ms, default=float("nan")),
    }


def ms(value: float) -> str:
    """A wait in whole ms; an infinite one (tasks that never ran) as "never"."""
    return "never" if value == float("inf") else f"{value:.0f}"


def done_of(r: dict) -> str:
    """``done/sent``, and how many never ran (results written before ``short_unfinished`` existed: derived)."""
    unfinished = r.get("short_unfinished", r["short_sent"] - r["short_done"])
    return f"{r['short_done']}/{r['short_sent']}" + (f" ({unfinished} unfinished)" if unfinished else "")


class Worker:
    def __init__(self, name: str, env: dict, queues: str, pool: str, concurrency: int, extra: list[str] = ()):
        self.name = name
        self.log = (RESULTS / "bench-queue" / f"{name}.log").open("w")
        cmd = [CELERY, "-A", "queue_tasks", "worker", "-Q", queues, "-P", pool, "-c", str(concurrency),
               "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}-{uuid.uuid4().hex[:4]}@%h",
               "--loglevel", "WARNING", *extra]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT)

    def kill_all(self) -> None:
        """SIGKILL the worker and its pool: a crashed machine."""
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in [self.proc.pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_all()
        self.log.close()


def client(broker: str) -> Celery:
    c = Celery("queue_tasks", broker=broker, set_as_current=False)
    c.conf.update(
        task_default_delivery_mode="persistent",
        broker_transport_options={"confirm_publish": True} if broker.startswith("amqp") else {},
    )
    return c


def purge(broker: str, *queues: str) -> None:
    import kombu

    with kombu.Connection(broker) as conn:
        for q in queues:
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(q)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def wait_ready(c: Celery, name: str, timeout: float = 60) -> None:
    if not wait_until(lambda: any(name in k for r in (c.control.ping(timeout=0.5) or []) for k in r), timeout, 0.3):
        raise RuntimeError(f"worker {name} did not start; see results/bench-queue/{name}.log")


# ---------------------------------------------------------------------------------------- 1. blocking
# Two single-process workers in every layout (as on two machines): a worker busy with a long task can only
# hold messages back from the other one, which is what prefetch and early acks decide.
BLOCKING = {
    "a-defaults": {"workers": [("celery", 1), ("celery", 1)], "prefetch": "4", "acks_late": "0", "fair": False},
    "b-prefetch1-late-fair": {
        "workers": [("celery", 1), ("celery", 1)], "prefetch": "1", "acks_late": "1", "fair": True,
    },
    "c-separate-queues": {"workers": [("celery", 1), ("long", 1)], "prefetch": "1", "acks_late": "1", "fair": True},
}  # fmt: skip


def blocking(broker: str, store: redis.Redis, base_env: dict) -> dict:
    """BLOCK_ROUNDS rounds, the order reversed every other round (a b c, c b a, ...)."""
    runs: dict[str, list[dict]] = {name: [] for name in BLOCKING}
    for rnd in range(BLOCK_ROUNDS):
        names = list(BLOCKING) if rnd % 2 == 0 else list(reversed(BLOCKING))
        for name in names:
            sent, waits = blocking_run(name, BLOCKING[name], broker, store, base_env)
            one = wait_summary(waits, sent)
            runs[name].append({**one, "waits_ms": waits})
            print(f"  round {rnd + 1} {name}: p50 {ms(one['p50_ms'])} ms, p95 {ms(one['p95_ms'])} ms, "
                  f"max {ms(one['max_ms'])} ms ({done_of(one)})")  # fmt: skip
    results = {}
    for name, rs in runs.items():
        results[name] = {
            **wait_summary([w for r in rs for w in r["waits_ms"]], sum(r["short_sent"] for r in rs)),
            "p95_by_round_ms": [r["p95_ms"] for r in rs],
            "runs": rs,
        }
    return results


def blocking_run(name: str, cfg: dict, broker: str, store: redis.Redis, base_env: dict) -> tuple[int, list[float]]:
    run = f"block-{name}-{uuid.uuid4().hex[:6]}"
    env = {**base_env, "BENCH_PREFETCH": cfg["prefetch"], "BENCH_ACKS_LATE": cfg["acks_late"],
           "BENCH_LONG_QUEUE": "long" if name.startswith("c") else "celery"}  # fmt: skip
    purge(broker, "celery", "long")
    c = client(broker)
    c.conf.task_routes = {"bench.long": {"queue": env["BENCH_LONG_QUEUE"]}}
    workers = [
        Worker(f"{name}-{q}{i}", env, q, "prefork", n, ["-O", "fair" if cfg["fair"] else "default"])
        for i, (q, n) in enumerate(cfg["workers"])
    ]
    for w in workers:
        wait_ready(c, w.name)
    started = time.monotonic()
    sent_short = 0
    next_long = started
    while time.monotonic() - started < BLOCK_SECONDS:
        now = time.monotonic()
        if now >= next_long:
            c.send_task("bench.long", args=[run])
            next_long += 4.0
        c.send_task("bench.short", args=[run, time.time()])
        sent_short += 1
        time.sleep(max(0.0, started + sent_short * 0.1 - time.monotonic()))
    wait_until(lambda run=run, sent=sent_short: store.llen(f"bench:{run}:wait") >= sent, 120)
    waits = [float(x) * 1000 for x in store.lrange(f"bench:{run}:wait", 0, -1)]
    for w in workers:
        w.kill_all()  # long tasks may still run; not measured
        w.log.close()
    purge(broker, "celery", "long")
    c.close()
    return sent_short, waits


# ---------------------------------------------------------------------------------------- 2. pools
def start_endpoint() -> tuple[str, asyncio.AbstractEventLoop]:
    """A local HTTP endpoint answering every request after 100 ms; asyncio, so that it is never the bottleneck."""
    loop = asyncio.new_event_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            await asyncio.sleep(0.1)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048))
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", loop


#: (pool, concurrency, tasks); BENCH_QUICK=1 queues a fifth of the tasks
POOLS = [("prefork", 2, 40), ("threads", 50, 1000), ("gevent", 200, 3000), ("eventlet", 200, 3000)]
if QUICK:
    POOLS = [(pool, conc, n // 5) for pool, conc, n in POOLS]
BROKER_TASKS = knob("BENCH_BROKER_TASKS", 2000, 200)
#: Redis gives a dead worker's task back only after its visibility timeout and kombu's slow restore scan
#: (20 s to 2 min here): BENCH_QUICK=1 leaves that measurement out.
REDIS_REDELIVERY = not QUICK


def pools(broker: str, store: redis.Redis, base_env: dict) -> dict:
    url, loop = start_endpoint()
    results = {}
    for pool, conc, n in POOLS:
        run = f"pool-{pool}-{uuid.uuid4().hex[:6]}"
        purge(broker, "io")
        c = client(broker)
        for _ in range(n):
            c.send_task("bench.io", args=[run, url], queue="io")
        w = Worker(f"pool-{pool}", {**base_env, "BENCH_PREFETCH": "1"}, "io", pool, conc)
        ok = wait_until(lambda run=run, n=n: store.llen(f"bench:{run}:end") >= n, 180, 0.2)
        alive = w.proc.poll() is None
        w.stop()
        starts = [float(x) for x in store.lrange(f"bench:{run}:start", 0, -1)]
        ends = [float(x) for x in store.lrange(f"bench:{run}:end", 0, -1)]
        purge(broker, "io")
        c.close()
        if not ok or not ends:
            log = (RESULTS / "bench-queue" / f"pool-{pool}.log").read_text()[-600:]
            results[pool] = {"concurrency": conc, "tasks": n, "done": len(ends), "runs": False, "error": log}
            print(f"  {pool}: did not complete ({len(ends)}/{n}; worker alive: {alive})")
            continue
        rate = len(ends) / (max(ends) - min(starts))
        results[pool] = {"concurrency": conc, "tasks": n, "done": len(ends), "runs": True, "tasks_per_s": rate}
        print(f"  {pool} -c{conc}: {rate:.1f} tasks/s")
    loop.call_soon_threadsafe(loop.stop)
    return results


# ---------------------------------------------------------------------------------------- 3. brokers
def brokers(urls: dict[str, str], store: redis.Redis, base_env: dict) -> dict:
    results = {}
    for name, broker in urls.items():
        env = {**base_env, "BENCH_BROKER": broker, "BENCH_VISIBILITY": "20"}
        run = f"broker-{name}-{uuid.uuid4().hex[:6]}"
        purge(broker, "small", "slow")
        c = client(broker)
        n = BROKER_TASKS
        t0 = time.perf_counter()
        for _ in range(n):
            c.send_task("bench.noop", args=[run], queue="small")
        publish_rate = n / (time.perf_counter() - t0)
        w = Worker(f"broker-{name}", env, "small", "prefork", 2)
        wait_until(lambda run=run, n=n: store.llen(f"bench:{run}:end") >= n, 180, 0.2)
        w.stop()
        ends = sorted(float(x) for x in store.lrange(f"bench:{run}:end", 0, -1))
        consume_rate = (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else float("nan")
        if name == "redis" and not REDIS_REDELIVERY:
            purge(broker, "small")
            c.close()
            results[name] = {"publish_per_s": publish_rate, "consume_per_s": consume_rate, "tasks": n,
                             "done": len(ends), "redelivery_s": None, "redelivery_skipped": True}  # fmt: skip
            print(f"  {name}: publish {publish_rate:.0f}/s, consume {consume_rate:.0f}/s, redelivery skipped (quick)")
            continue
        # Redelivery: a worker (and its pool) SIGKILLed while running a task; a new worker is started at once.
        run2 = f"redeliver-{name}-{uuid.uuid4().hex[:6]}"
        first = Worker(f"redeliver-{name}-1", env, "slow", "prefork", 1)
        wait_ready(c, first.name)
        c.send_task("bench.slow", args=[run2], queue="slow")
        wait_until(lambda run2=run2: store.llen(f"bench:{run2}:start") >= 1, 30, 0.05)
        first.kill_all()
        first.log.close()
        killed = time.time()
        second = Worker(f"redeliver-{name}-2", env, "slow", "prefork", 1)
        again = wait_until(lambda run2=run2: store.llen(f"bench:{run2}:start") >= 2, REDELIVERY_WAIT, 0.05)
        redelivery = float(store.lindex(f"bench:{run2}:start", 1)) - killed if again else None
        second.kill_all()
        second.log.close()
        purge(broker, "small", "slow")
        c.close()
        results[name] = {
            "publish_per_s": publish_rate,
            "consume_per_s": consume_rate,
            "tasks": n,
            "done": len(ends),
            "redelivery_s": redelivery,
        }
        shown = f"{redelivery:.1f} s" if redelivery is not None else f"none within {REDELIVERY_WAIT:.0f} s"
        print(f"  {name}: publish {publish_rate:.0f}/s, consume {consume_rate:.0f}/s, redelivery {shown}")
    return results


# ---------------------------------------------------------------------------------------- report
def report(block: dict, pool: dict, broker: dict, meta: dict, measured: str | None = None) -> str:
    measured = measured or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = ["# Queue benchmark", "", f"Measured {measured}" + (QUICK_NOTE if meta.get("quick") else ""), ""]
    lines += ["**1. Queue blocking** (short tasks' queue wait, ms)", ""]
    lines += ["| layout | p50 | p95 | max | p95 per round | short tasks done |", "|---|---|---|---|---|---|"]
    for name, r in block.items():
        rounds = " / ".join(ms(x) for x in r["p95_by_round_ms"])
        lines.append(
            f"| {name} | {ms(r['p50_ms'])} | {ms(r['p95_ms'])} | {ms(r['max_ms'])} | {rounds} | {done_of(r)} |"
        )
    a, c = block["a-defaults"], block["c-separate-queues"]
    verdict = "met" if c["p95_ms"] < 50 else "NOT met"
    finite = math.isfinite(a["p95_ms"]) and math.isfinite(c["p95_ms"])
    a_over_c = f"{a['p95_ms'] / max(c['p95_ms'], 0.1):.0f}x" if finite else "-"
    c_p95 = f"{c['p95_ms']:.0f} ms" if math.isfinite(c["p95_ms"]) else f"{ms(c['p95_ms'])}: {done_of(c)}"
    lines += [
        "",
        f"Goal (c) p95 < 50 ms: {verdict} ({c_p95}); (a)/(c) p95 ratio {a_over_c}. A short task still not started "
        '120 s after the last was sent is unfinished: it counts as infinitely late in p50/p95/max ("never"), not '
        "as a dropped sample.",
        "",
    ]
    lines += ["**2. Pools for I/O-bound work** (task waits 100 ms on a local HTTP endpoint)", ""]
    lines += ["| pool | concurrency | tasks | tasks/s | vs prefork |", "|---|---|---|---|---|"]
    base = pool.get("prefork", {}).get("tasks_per_s")
    for name, r in pool.items():
        if r["runs"]:
            ratio = f"{r['tasks_per_s'] / base:.1f}x" if base else "-"
            lines.append(
                f"| {name} | {r['concurrency']} | {r['done']}/{r['tasks']} | {r['tasks_per_s']:.1f} | {ratio} |"
            )
        else:
            lines.append(f"| {name} | {r['concurrency']} | {r['done']}/{r['tasks']} | did not run | - |")
    gevent = pool.get("gevent", {})
    if base and gevent.get("runs"):
        ratio = gevent["tasks_per_s"] / base
        verdict = "met" if ratio >= 50 else "NOT met"
        lines += [
            "",
            f"Goal gevent >= 50x prefork: {verdict} ({ratio:.1f}x). prefork -c2 can do at most 20 tasks/s here "
            "(2 processes x 10 waits/s); gevent and eventlet are bound by CPU (one process doing Celery's per-task "
            f"work on {meta['cpus']} shared cores), not by the waits.",
        ]
    lines += [""]
    lines += ["**3. Brokers** (trivial task; one prefork -c2 worker; late acks, prefetch 1)", ""]
    lines += [
        "| broker | publish/s (confirmed) | consume/s | redelivery after SIGKILL of the worker |",
        "|---|---|---|---|",
    ]
    for name, r in broker.items():
        red = f"{r['redelivery_s']:.1f} s" if r["redelivery_s"] is not None else f"none within {REDELIVERY_WAIT:.0f} s"
        if r.get("redelivery_skipped"):
            red = "not measured (BENCH_QUICK=1)"
        lines.append(f"| {name} | {r['publish_per_s']:.0f} | {r['consume_per_s']:.0f} | {red} |")
    lines += [
        "",
        f"One run per configuration (blocking: {BLOCK_ROUNDS}) on {meta['cpus']} shared cores "
        f"({meta['machine']}, load average {meta['loadavg_at_end'][0]:.1f} at the end); figures move between runs. "
        f"Blocking: {BLOCK_ROUNDS} rounds (order reversed every other round) of {BLOCK_SECONDS:.0f} s of load, "
        "short tasks every 100 ms, long ones every 4 s, two single-process workers in every layout (as on two "
        "machines; Celery 5.7's default scheduling is already fair, so what (a) changes is the prefetch and the "
        "early ack: a worker busy with a long task reserves short ones the other worker could run). "
        "Redelivery: the whole worker (main process and pool) is SIGKILLed while its task runs, a new worker "
        "starts at once; the figure is kill to restart of the task. The Redis broker "
        "here uses visibility_timeout=20 s, and kombu looks for expired messages only every 10th 10-second tick, "
        "so a dead worker's task comes back after 20 s to about 2 min; with Celery's and Breakwater's 3600 s, after "
        "about an hour. A pool process killed under a live worker is re-queued at once with either broker.",
        f"Raw data: `{RESULTS_REL}/bench-queue.json` (every queue wait, every rate) and worker logs in "
        f"`{RESULTS_REL}/bench-queue/`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if "--report-only" in sys.argv:  # rewrite the report from the last run's JSON
        data = json.loads((RESULTS / "bench-queue.json").read_text())
        text = report(data["blocking"], data["pools"], data["brokers"], data["meta"], data.get("measured"))
        (RESULTS / "bench-queue.md").write_text(text)
        update_readme("bench-queue", text)
        print(text)
        return
    (RESULTS / "bench-queue").mkdir(parents=True, exist_ok=True)
    stack, tmp = start_private_stack(extra={"PAGES_BUILD_ON_START": "0", "LOG_LEVEL": "WARNING"})
    try:
        s = stack.settings
        store = redis.Redis.from_url(s.redis_url)
        amqp = s.with_values(BROKER_URL="").broker_url
        base_env = {**os.environ, "BENCH_BROKER": amqp, "BENCH_REDIS": s.redis_url, "PYTHONPATH": str(HERE)}
        print("1. queue blocking (RabbitMQ)")
        block = blocking(amqp, store, base_env)
        print("2. pools (RabbitMQ)")
        pool = pools(amqp, store, base_env)
        print("3. brokers")
        broker = brokers({"rabbitmq": amqp, "redis": s.redis_url}, store, base_env)
        meta = {"cpus": os.cpu_count(), "machine": os.uname().nodename, "block_seconds": BLOCK_SECONDS, "quick": QUICK,
                "loadavg_at_end": os.getloadavg()}  # fmt: skip
        text = report(block, pool, broker, meta)
        (RESULTS / "bench-queue.md").write_text(text)
        (RESULTS / "bench-queue.json").write_text(
            json.dumps(
                {
                    "measured": text.split("\n")[2].removeprefix("Measured ").removesuffix(QUICK_NOTE),
                    "quick": QUICK,
                    "meta": meta,
                    "blocking": block,
                    "pools": pool,
                    "brokers": broker,
                },
                indent=1,
            )
            + "\n"
        )
        update_readme("bench-queue", text)
        print(text)
    finally:
        stack.down(quiet=True, kill=True)
        tmp.cleanup()


if __name__ == "__main__":
    main()
