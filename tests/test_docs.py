"""The docs are current and hold together.

- .env.example and docs/configuration.md list every setting (regenerate with `make config-docs`);
- docs/benchmarks.md holds the tables of the published run in docs/benchmarks/ (`make bench-publish`);
- README.md stays short (at most 200 lines) and names every benchmark and Locust target of the Makefile;
- every relative link of README.md and docs/*.md resolves to a file of the repository (and its #anchor to a
  heading of that file), no link leaves the repository, and every repository path they quote exists.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from breakwater.settings import (
    CONFIG_DOC,
    ROOT,
    SETTINGS,
    TABLE_BEGIN,
    TABLE_END,
    env_example,
    env_name,
    markdown_table,
)

README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200
PAGES = [README, *sorted(DOCS.glob("*.md"))]
#: where a newcomer must find these in the README's layout, in one look
LANDMARKS = [
    "site/breakwater/flash/gate.py",
    "site/breakwater/pages/builder.py",
    "nginx/edge.vcl.j2",
    "site/breakwater/database/router.py",
]


def between(text: str, begin: str, end: str) -> str:
    assert begin in text and end in text, f"no {begin} ... {end}"
    return text[text.index(begin) + len(begin) : text.index(end)].strip()


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (links there are examples, not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text: str) -> list[str]:
    """Targets of Markdown links and images, ``[text](target)``, outside code."""
    return re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped (letters of any script kept), spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        base = slug(heading)
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


# ---------------------------------------------------------------------- generated tables
def test_env_example_is_current():
    assert (ROOT / ".env.example").read_text() == env_example(), "run `make config-docs`"


def test_the_configuration_doc_holds_the_generated_table():
    doc = CONFIG_DOC.read_text()
    assert between(doc, TABLE_BEGIN, TABLE_END) == markdown_table(), "run `make config-docs`"
    for s in SETTINGS:
        assert env_name(s.name) in doc


def test_the_benchmarks_doc_holds_the_tables_of_the_published_run():
    """What `make bench-publish` writes from docs/benchmarks/ (publish.doc_blocks, in a subprocess: importing
    the benchmark library installs signal handlers and an exit hook that pytest's process must not get)."""
    code = (
        "import json; from publish import BENCHMARKS_DOC, doc_blocks; from benchlib import PUBLISHED; "
        "print(json.dumps(doc_blocks(PUBLISHED, BENCHMARKS_DOC)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT / "loadtests", capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "bench" in expected and len(expected) > 1, expected.keys()
    doc = (DOCS / "benchmarks.md").read_text()
    for name, body in expected.items():
        assert between(doc, f"<!-- {name}:begin -->", f"<!-- {name}:end -->") == body, (
            f"docs/benchmarks.md's {name} block is not docs/benchmarks/'s: run `make bench-publish` "
            "(RUN=loadtests/results/<the published run>)"
        )
    for name in re.findall(r"<!-- ([\w-]+):begin -->", doc):
        if name not in expected:  # a runner not published yet: its block waits, empty
            assert between(doc, f"<!-- {name}:begin -->", f"<!-- {name}:end -->") == "", name


# ---------------------------------------------------------------------- the README
def test_the_readme_is_short_and_starts_with_the_two_commands():
    readme = README.read_text()
    lines = len(readme.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES}): move it to docs/"
    head = readme[:2500]
    assert "make run" in head and "make test" in head


def test_the_readme_names_every_benchmark_and_locust_target():
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^((?:bench|locust)[a-z0-9-]*):.*## ", makefile, flags=re.M)
    assert "bench" in targets and "locust" in targets, targets
    readme = README.read_text()
    missing = [t for t in targets if not re.search(rf"make {re.escape(t)}(?![a-z0-9-])", readme)]
    assert not missing, f"README.md does not mention: {', '.join('make ' + t for t in missing)}"


@pytest.mark.parametrize("path", LANDMARKS)
def test_the_readme_layout_shows_where_the_landmarks_live(path):
    assert (ROOT / path).is_file(), f"{path} moved: update README.md's layout and this list"
    readme = README.read_text()
    folder, name = path.rsplit("/", 1)
    assert name in readme and folder.rsplit("/", 1)[-1] + "/" in readme, f"README.md's layout lacks {path}"


# ---------------------------------------------------------------------- links and paths
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {dest.relative_to(ROOT)})")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_repository_path_quoted_exists(page):
    """`site/...`, `nginx/...` and the like in code spans name real files (not generated ones)."""
    text = re.sub(r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->", "", page.read_text(), flags=re.S)
    quoted = re.findall(r"`((?:site|loadtests|tests|nginx|db|docs|\.ci)/[\w./-]+)`", text)
    generated = ("loadtests/results", "static_build")
    missing = sorted({p for p in quoted if not p.startswith(generated) and not (ROOT / p.rstrip("/")).exists()})
    assert not missing, f"{page.relative_to(ROOT)} quotes paths that do not exist: {missing}"
    assert "shared/design" not in text, "the docs never point outside the repository"
