"""Benchmarks leave the checkout clean and nothing running; every supervised program runs in its own state folder
(issue 19, points 7 and 8). No stack is started here: a real supervisord with a few programs, real processes,
and the publishing script on folders of its own.

benchlib is imported only in subprocesses: importing it installs signal handlers and an exit hook that kills
every process its run started, which pytest's own process must not get.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from breakwater.settings import Settings
from breakwater_tools.stack import Stack
from breakwater_tools.stack.files import templates
from breakwater_tools.stack.layout import Layout
from breakwater_tools.stack.ports import free_ports
from breakwater_tools.stack.render import render_all
from breakwater_tools.stack.supervisor import Program, Supervisor, processes_under
from stack_helpers import stack_env

ROOT = Path(__file__).resolve().parents[1]
LOADTESTS = ROOT / "loadtests"
RUNNERS = ["bench-static", "bench-cache", "bench-db", "bench-workers", "bench-queue", "bench-flash", "bench-spike"]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------------- every program in its own folder
def test_every_supervised_program_runs_in_a_folder_of_its_own_inside_the_state_dir(tmp_path):
    """RabbitMQ's MnesiaCore crash dump landed in the checkout because its working directory was the repository."""
    env = stack_env(tmp_path)
    sentinels = free_ports(4)
    env |= {
        "BREAKWATER_REDIS_SENTINEL": "1",
        "BREAKWATER_SENTINEL_PORTS": ",".join(map(str, sentinels[:3])),
        "BREAKWATER_REDIS_REPLICA_PORT": str(sentinels[3]),
        "BREAKWATER_REDIS_PASSWORD": "pw",
        "BREAKWATER_FLOWER": "1",
        "BREAKWATER_DB_FAILOVER_AFTER": "2",
        "BREAKWATER_WEB_INSTANCES": "2",
    }
    st = Stack(env, echo=lambda _m: None)
    render_all(st.layout)
    conf = configparser.RawConfigParser()
    conf.read(st.layout.supervisor_conf)
    state = st.layout.state.resolve()
    folders = {
        s.removeprefix("program:"): Path(conf[s]["directory"]) for s in conf.sections() if s.startswith("program:")
    }
    # every kind of program is there: databases, Redis and its Sentinels, brokers, gunicorns, Celery, the edge
    assert {"mariadb-primary", "redis", "sentinel1", "rabbitmq", "smtp", "app", "app2", "beat", "flower", "db-watch",
            "nginx", "edge", "worker-orders"} <= folders.keys(), sorted(folders)  # fmt: skip
    outside = {name: str(d) for name, d in folders.items() if not (d.is_dir() and state in d.resolve().parents)}
    assert not outside, f"programs whose working directory is not a folder inside {state}: {outside}"
    shared = {d for d in folders.values() if list(folders.values()).count(d) > 1}
    assert not shared, f"folders shared by two programs: {shared}"
    assert folders["rabbitmq"] == st.layout.rabbitmq and folders["edge"] == st.layout.edge
    assert state in Path(conf["supervisord"]["directory"]).resolve().parents


# ---------------------------------------------------------------------- killing a throwaway stack
def test_killing_a_throwaway_stack_leaves_no_process_of_it_behind(tmp_path):
    """Supervisor.kill: every program's process group, also a process one of them started in a session of its own
    (out of reach of its group) or that left the state folder but names it, and nothing supervisord restarts."""
    state = tmp_path / "state"
    settings = Settings.load({"BREAKWATER_STATE_DIR": str(state), "BREAKWATER_APP_PORT": str(free_ports(1)[0])})
    layout = Layout(settings)
    for d in (layout.supervisor, layout.logs):
        d.mkdir(parents=True)
    named = state / "named-on-the-command-line"
    programs = [
        Program("plain", "test", "sleep 1000", None, startsecs=1),
        # a child in a session of its own, as a daemonizing program leaves one: its cwd is the program's folder
        Program(
            "daemonizer",
            "test",
            "sh -c 'setsid sleep 1001 </dev/null >/dev/null 2>&1 & exec sleep 1000'",
            None,
            startsecs=1,
        ),
        # one that left the state folder for / but names a path in it
        Program(
            "away",
            "test",
            f'sh -c \'cd / && setsid {sys.executable} -c "import time; time.sleep(1000)" {named} </dev/null '
            ">/dev/null 2>&1 & exec sleep 1000'",
            None,
            startsecs=1,
        ),
    ]
    for p in programs:
        p.directory = str(state / "run" / p.name)
        Path(p.directory).mkdir(parents=True)
    conf = templates.get_template("supervisord.conf.j2").render(
        sup_dir=layout.supervisor, sup_sock=layout.supervisor_sock, log_dir=layout.logs, programs=programs, ident=1
    )
    layout.supervisor_conf.write_text(conf)
    sup = Supervisor(layout)
    sup.start_daemon(dict(os.environ))
    try:
        for p in programs:
            sup.wait_running(p.name, timeout=20)
        deadline = time.monotonic() + 10
        while len(processes_under(state)) < 6 and time.monotonic() < deadline:  # supervisord, 3 programs, 2 escapees
            time.sleep(0.1)
        before = processes_under(state)
        sessions = {os.getsid(p) for p in before if alive(p)}
        assert len(before) >= 6 and len(sessions) >= 3, f"{before}: the escapees did not start"
    finally:
        sup.kill()
    assert wait_gone(before) == [], "processes of the stack still alive after Supervisor.kill"
    time.sleep(1.5)  # long enough for supervisord to have restarted a program, had it been running
    assert processes_under(state) == [], "a process of the stack appeared after Supervisor.kill"


# ---------------------------------------------------------------------- a benchmark that fails or is interrupted
GUARDED = r"""
import json, subprocess, sys, time
import benchlib
detached = subprocess.Popen(["sleep", "1000"], start_new_session=True)
folder = benchlib.BenchFolder()
inside = subprocess.Popen(["sleep", "1001"], cwd=folder.name, start_new_session=True)
mode = sys.argv[1]
if mode == "cleanup":
    folder.cleanup()
    time.sleep(0.2)
    print(json.dumps({"inside": inside.poll(), "detached": detached.poll()}), flush=True)
    detached.kill()
    sys.exit(0)
print(json.dumps({"pids": [detached.pid, inside.pid]}), flush=True)
if mode == "raise":
    raise RuntimeError("a runner fails")
time.sleep(60)
"""


def run_guarded(mode: str, sig: int | None = None) -> tuple[subprocess.Popen, list[int], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", GUARDED, mode], cwd=LOADTESTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={k: v for k, v in os.environ.items() if k != "BENCH_RUN_ID"},
    )  # fmt: skip
    pids = json.loads(proc.stdout.readline())["pids"]
    assert all(alive(p) for p in pids)
    if sig is not None:
        time.sleep(0.3)
        proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    return proc, pids, err


@pytest.mark.parametrize(
    ("mode", "sig"), [("raise", None), ("wait", signal.SIGINT), ("wait", signal.SIGTERM)],
    ids=["a runner raises", "Ctrl-C", "SIGTERM"],
)  # fmt: skip
def test_a_benchmark_that_fails_or_is_interrupted_leaves_nothing_running(mode, sig):
    """Everything a benchmark started carries its BENCH_RUN_ID; when the process that set it exits, however it
    exits but SIGKILL, whatever still carries it is killed, also processes in sessions of their own."""
    proc, pids, err = run_guarded(mode, sig)
    assert proc.returncode != 0
    assert wait_gone(pids) == [], f"left running after the benchmark ended ({proc.returncode}): {pids}\n{err[-2000:]}"
    assert "stopped 2 leftover process(es)" in err, err[-2000:]


def test_a_private_stack_folder_kills_what_runs_in_it_before_it_is_deleted():
    proc = subprocess.run(
        [sys.executable, "-c", GUARDED, "cleanup"], cwd=LOADTESTS, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "BENCH_RUN_ID"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"inside": -signal.SIGKILL, "detached": None}, result


# ---------------------------------------------------------------------- publishing
def publish(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "publish.py", *args], cwd=LOADTESTS, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "BENCH_RUN_ID"},
    )  # fmt: skip


def fake_run(folder: Path, quick: bool) -> Path:
    (folder / "charts").mkdir(parents=True)
    (folder / "charts" / "homepage-throughput.png").write_bytes(b"\x89PNG")
    (folder / "report.md").write_text(
        "# Breakwater benchmark report\n\n## Raw data\n\nEach runner's report, JSON and raw files (...) are copied "
        "beside this report:\n\n- [bench-db.md](bench-db.md), [bench-db.json](bench-db.json), "
        "[raw/bench-db/](raw/bench-db/), [its log](logs/bench-db.log)\n"
    )
    (folder / "report.json").write_text(json.dumps({"quick": quick, "runs": {}, "checks": []}))
    for name in RUNNERS:
        (folder / f"{name}.md").write_text(
            f"# {name}\n\nMeasured now\n\n| table |\n\nRaw data: `loadtests/results/{name}.json` (every run) and "
            f"`loadtests/results/{name}/` (Locust CSV).\n"
        )
        (folder / f"{name}.json").write_text(json.dumps({"quick": quick, "meta": {}, "configs": {}}))
    (folder / "readme-table.md").write_text(
        f"Latest `make bench`: [loadtests/results/{folder.name}/report.md](loadtests/results/{folder.name}/report.md) "
        f"([HTML](loadtests/results/{folder.name}/report.html)).\n\n| configuration | req/s |\n"
    )
    return folder


def fake_doc(path: Path) -> Path:
    """A docs/benchmarks.md with every block but the last runner's (publish appends a missing block at the end)."""
    blocks = "".join(f"<!-- {n}:begin -->\nold\n<!-- {n}:end -->\n\n" for n in ["bench", *RUNNERS[:-1]])
    path.write_text("# Benchmarks\n\n" + blocks + "## The end\n")
    return path


def test_bench_publish_refuses_a_quick_run_in_one_sentence(tmp_path):
    run = fake_run(tmp_path / "20990101-000000", quick=True)
    doc = fake_doc(tmp_path / "benchmarks.md")
    before = doc.read_text()
    proc = publish(str(run), "--docs", str(tmp_path / "docs"), "--doc", str(doc))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert "\n" not in message and message.count(". ") == 0 and message.endswith("."), message
    assert "QUICK" in message and "make bench" in message and "without QUICK=1" in message, message
    assert not (tmp_path / "docs").exists() and doc.read_text() == before


def test_bench_publish_copies_a_full_run_and_writes_its_tables_into_the_benchmarks_page(tmp_path):
    run = fake_run(tmp_path / "20990101-000000", quick=False)
    page = fake_doc(tmp_path / "benchmarks.md")
    docs = tmp_path / "docs"
    proc = publish(str(run), "--docs", str(docs), "--doc", str(page))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(str(p.relative_to(docs)) for p in docs.rglob("*") if p.is_file())
    assert names == sorted(
        ["charts/homepage-throughput.png", "readme-table.md", "report.html", "report.json", "report.md"]
        + [f"{n}.{ext}" for n in RUNNERS for ext in ("md", "json")]
    ), names
    report = (docs / "report.md").read_text()
    assert "raw/" not in report and "logs/" not in report, report
    text = page.read_text()
    assert "old" not in text and "loadtests/results/20990101" not in text, text
    # links relative to the page; the missing block appended after the rest
    assert f"[{docs}/report.md](docs/report.md) ([HTML](docs/report.html))" in text, text
    assert text.index("## The end") < text.index(f"<!-- {RUNNERS[-1]}:begin -->\nMeasured now"), text
    assert (
        "`docs/benchmarks/bench-db.json`" in text
        and "`loadtests/results/bench-db/` (Locust CSV; not published)" in text
    )


# ---------------------------------------------------------------------- the repository
def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


needs_git = pytest.mark.skipif(not (ROOT / ".git").exists() or not shutil.which("git"), reason="not a git checkout")


@needs_git
def test_the_repository_holds_one_published_run_no_results_and_no_crash_dump():
    assert git("ls-files", "loadtests/results") == ""
    tracked = git("ls-files").splitlines()
    dumps = [f for f in tracked if re.search(r"(^|/)(MnesiaCore\.[^/]*|erl_crash\.dump|core(\.\d+)?)$", f)]
    assert not dumps, dumps
    for path in ("loadtests/results/20990101-000000/report.md", "loadtests/results/quick/x.json", "MnesiaCore.x",
                 "erl_crash.dump", "core", ".schemathesis/x", ".hypothesis/x"):  # fmt: skip
        assert git("check-ignore", "--no-index", path).strip() == path
    report = json.loads((ROOT / "docs" / "benchmarks" / "report.json").read_text())
    assert report["quick"] is False


def test_the_benchmarks_page_points_at_the_published_run():
    """Its links resolve and its tables are those of docs/benchmarks/: tests/test_docs.py."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert "make bench-publish" in page
    assert "(benchmarks/report.md)" in page
