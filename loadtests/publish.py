"""`make bench-publish` (`RUN=...`): one full benchmark run becomes the committed reference in docs/benchmarks/.

A run writes only to loadtests/results/ (ignored by git). This copies one full run's report (report.md, .html,
.json), its charts, its composite table (readme-table.md) and each runner's report and JSON into docs/benchmarks/,
then writes the tables of what is published there into docs/benchmarks.md (the composite table between
<!-- bench:begin/end -->, each runner's between <!-- bench-NAME:begin/end -->; a runner without its block gets one
at the end). The raw files (Locust CSV/JSON/logs, wrk output, runner logs) stay with the run and are not
published. tests/test_docs.py checks that docs/benchmarks.md holds what :func:`doc_blocks` makes of docs/benchmarks/.

RUN is a report folder (default: the newest full one in loadtests/results/) or a runner published alone
(`bench-cluster`, or any runner its own target re-measured, e.g. `bench-spike`: loadtests/results/<name>.md and
.json). A BENCH_QUICK=1 run, or a run of only some
runners (BENCH_ONLY), is refused: it is no measurement to cite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

from benchlib import PUBLISHED, RESULTS_ROOT, ROOT
from report import README_TABLE, RUNNERS
from report_parts import html

REPORT_FILES = ("report.md", "report.html", "report.json")
#: runners that `make bench` does not run (root, network namespaces): published alone, RUN=bench-cluster
ALONE = ("bench-cluster",)
#: the page whose tables `make bench-publish` sets (the method around them is written by hand)
BENCHMARKS_DOC = ROOT / "docs" / "benchmarks.md"


class Refused(Exception):
    """Why this run cannot be published: one sentence that says what to do."""


def is_quick(data: dict | None) -> bool:
    return bool(data) and bool(data.get("quick") or data.get("meta", {}).get("quick"))


def full_runs() -> list[Path]:
    """Report folders of full runs in loadtests/results/, oldest first (their names are their UTC times)."""
    found = []
    for folder in sorted(p for p in RESULTS_ROOT.glob("[0-9]*-[0-9]*") if (p / "report.json").is_file()):
        try:
            check_run(folder)
        except Refused:
            continue
        found.append(folder)
    return found


def check_run(folder: Path) -> None:
    """Raise Refused unless ``folder`` holds a full run of every runner with its composite table."""
    shown = _shown(folder)
    if not (folder / "report.json").is_file():
        raise Refused(f"{shown} holds no report.json: name a report folder of loadtests/results/ (or bench-cluster).")
    report = json.loads((folder / "report.json").read_text())
    runners = [json.loads((folder / f"{n}.json").read_text()) for n in RUNNERS if (folder / f"{n}.json").exists()]
    if is_quick(report) or any(is_quick(r) for r in runners) or RESULTS_ROOT / "quick" in folder.resolve().parents:
        raise Refused(
            f"{shown} is a QUICK run (BENCH_QUICK=1), no measurement: run `make bench` without QUICK=1 and then "
            "`make bench-publish`."
        )
    missing = [n for n in RUNNERS if not (folder / f"{n}.json").exists()]
    if missing:
        raise Refused(
            f"{shown} lacks {', '.join(missing)} (a BENCH_ONLY or failed run): publish a run of every runner, "
            "`make bench` without BENCH_ONLY."
        )
    if not (folder / README_TABLE).exists():
        raise Refused(
            f"{shown} has no {README_TABLE} (composed before `make bench-publish` existed): recompose it with "
            f"`python loadtests/report.py {shown}` first."
        )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def published_text(text: str) -> str:
    """A report's paths to the run's files, pointed at the published copies (or marked as not published)."""
    burst = r"`loadtests/results/[\w./-]*?bench-flash[\w-]*/burst\.png`"
    text = re.sub(burst, "`docs/benchmarks/charts/flash-burst.png`", text)
    text = re.sub(r"`loadtests/results/(?:[\w.-]+/)*?(bench-[\w-]+)\.(json|md)`", r"`docs/benchmarks/\1.\2`", text)
    return re.sub(
        r"(`loadtests/results/[^`]*`)(?: \(([^()]*)\))?",
        lambda m: f"{m[1]} ({m[2] + '; ' if m[2] else ''}not published)",
        text,
    )


def published_report(text: str) -> str:
    """The composite report with links only to what is published (no raw/ folders, no logs)."""
    text = re.sub(r", \[raw/[^\]]*\]\([^)]*\)", "", text)
    text = re.sub(r",? ?\[its log\]\(logs/[^)]*\)", "", text)
    text = re.sub(
        r"^Each runner's report, JSON and raw files.*$",
        "Each runner's report and JSON are beside this report (`make bench-publish`; the raw files and logs "
        "stayed with the run in loadtests/results/):",
        text,
        flags=re.M,
    )
    return published_text(text)


def runner_body(text: str) -> str:
    """A runner's report for its block: without its title line."""
    return text.split("\n", 2)[2].strip()


def composite_table(text: str, docs: Path, doc: Path) -> str:
    """The run's composite table with its links to the report pointed at the published copy, relative to ``doc``."""
    rel = Path(os.path.relpath(docs, doc.parent)).as_posix()
    text = re.sub(r"\[[^\]]*/report\.md\]\([^)]*\)", lambda _: f"[{_shown(docs)}/report.md]({rel}/report.md)", text)
    return re.sub(r"\(\[HTML\]\([^)]*\)\)", lambda _: f"([HTML]({rel}/report.html))", text)


def doc_blocks(docs: Path, doc: Path) -> dict[str, str]:
    """What ``doc`` holds between its markers, made from the published run in ``docs`` alone: the composite
    table (``bench``), then each published runner's report without its title, in the runners' order."""
    blocks = {}
    if (docs / README_TABLE).exists():
        blocks["bench"] = composite_table((docs / README_TABLE).read_text(), docs, doc).strip()
    order = [*RUNNERS, *ALONE]
    for md in sorted(docs.glob("bench-*.md"), key=lambda p: (order.index(p.stem) if p.stem in order else 99, p.stem)):
        blocks[md.stem] = runner_body(md.read_text())
    return blocks


def set_block(doc: Path, name: str, body: str) -> None:
    """Put ``body`` between <!-- NAME:begin/end --> in ``doc``, appending the block (under a heading) if missing."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n### `make {name}`\n\n{begin}\n{end}\n"
    start, stop = text.index(begin) + len(begin), text.index(end)
    doc.write_text(text[:start] + "\n" + body.strip() + "\n" + text[stop:])


def write_doc(docs: Path, doc: Path) -> None:
    """Every block of ``doc`` from what ``docs`` holds now (see :func:`doc_blocks`)."""
    for name, body in doc_blocks(docs, doc).items():
        set_block(doc, name, body)


def publish_run(folder: Path, docs: Path, doc: Path) -> list[Path]:
    check_run(folder)
    docs.mkdir(parents=True, exist_ok=True)
    for name in (*REPORT_FILES, README_TABLE, *(f"{n}.{ext}" for n in RUNNERS for ext in ("md", "json"))):
        (docs / name).unlink(missing_ok=True)
    shutil.rmtree(docs / "charts", ignore_errors=True)
    shutil.copytree(folder / "charts", docs / "charts")
    report = published_report((folder / "report.md").read_text())
    (docs / "report.md").write_text(report)
    (docs / "report.html").write_text(html(report))
    shutil.copyfile(folder / "report.json", docs / "report.json")
    for name in RUNNERS:
        text = published_text((folder / f"{name}.md").read_text())
        (docs / f"{name}.md").write_text(text)
        shutil.copyfile(folder / f"{name}.json", docs / f"{name}.json")
    shutil.copyfile(folder / README_TABLE, docs / README_TABLE)
    write_doc(docs, doc)
    return sorted(p for p in docs.rglob("*") if p.is_file())


def publish_alone(name: str, docs: Path, doc: Path) -> list[Path]:
    md, data = RESULTS_ROOT / f"{name}.md", RESULTS_ROOT / f"{name}.json"
    if not (md.exists() and data.exists()):
        raise Refused(f"loadtests/results/ holds no {name}.md and .json: run `make {name}` first.")
    if is_quick(json.loads(data.read_text())):
        raise Refused(f"loadtests/results/{name}.json is a QUICK run (BENCH_QUICK=1): run `make {name}` without it.")
    docs.mkdir(parents=True, exist_ok=True)
    text = published_text(md.read_text())
    (docs / f"{name}.md").write_text(text)
    shutil.copyfile(data, docs / f"{name}.json")
    write_doc(docs, doc)
    return [docs / f"{name}.md", docs / f"{name}.json"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("run", nargs="?", default="", help="a report folder, or bench-cluster (default: newest full)")
    parser.add_argument("--docs", type=Path, default=PUBLISHED, help="where to publish (default docs/benchmarks)")
    parser.add_argument("--doc", type=Path, default=BENCHMARKS_DOC, help="the page whose tables to set")
    args = parser.parse_args(argv)
    try:
        # bench-cluster, or one runner re-measured by its own target (`make bench-spike`): published alone,
        # beside the full run's other runners (each runner's report says when it was measured)
        if args.run.removeprefix("bench-") in {a.removeprefix("bench-") for a in (*ALONE, *RUNNERS)}:
            files = publish_alone("bench-" + args.run.removeprefix("bench-"), args.docs, args.doc)
            source = f"loadtests/results/bench-{args.run.removeprefix('bench-')}.md"
        else:
            if args.run:
                folder = Path(args.run)
                folder = folder if folder.is_absolute() or folder.exists() else ROOT / folder
            else:
                runs = full_runs()
                if not runs:
                    raise Refused("loadtests/results/ holds no full run: run `make bench` without QUICK=1 first.")
                folder = runs[-1]
            files = publish_run(folder.resolve(), args.docs, args.doc)
            source = _shown(folder)
    except Refused as why:
        print(f"bench-publish: {why}", file=sys.stderr)
        return 2
    docs, doc = _shown(args.docs), _shown(args.doc)
    print(f"Published {source} into {docs} ({len(files)} files) and its tables into {doc};")
    print(f"commit them: git add {docs} {doc} && git commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
