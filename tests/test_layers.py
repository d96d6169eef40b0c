"""The import layers (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``): kept by the code as it
is, and broken, with the offending import named, by each kind of change they forbid. Each case edits a
copy of site/ and runs the same lint-imports command ``make lint`` runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache", str(ROOT / "pyproject.toml")], cwd=site, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def site_copy(tmp_path) -> Path:
    copy = tmp_path / "site"
    shutil.copytree(ROOT / "site", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def test_the_code_keeps_every_contract():
    result = lint(ROOT / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "named"),
    [
        # infrastructure reaching up into a feature
        ("breakwater/database/engine.py", "import breakwater.flash.api", "Layers: entry points",
         "breakwater.flash.api"),
        # a service reaching up into its own feature's web module
        ("breakwater/content/services.py", "import breakwater.content.views", "Inside a feature",
         "breakwater.content.views"),
        # the page builder learning about a feature again
        ("breakwater/pages/builder.py", "import breakwater.content.models", "Layers: entry points",
         "breakwater.content.models"),
        # a file cycle inside a feature (both modules are services)
        ("breakwater/flash/gate.py", "import breakwater.flash.orders", "No import cycles", "orders"),
        # a private helper borrowed across packages
        ("breakwater/ads/services.py", "from breakwater.content.services import _commit_unique",
         "No _private name", "_commit_unique"),
        # the app importing its own tooling
        ("breakwater/app.py", "import breakwater_tools.stack", "never imports its tooling", "breakwater_tools.stack"),
    ],
    ids=["upward", "service-to-view", "builder-to-feature", "cycle", "private-name", "tooling"],
)  # fmt: skip
def test_a_forbidden_import_breaks_its_contract(site_copy, module, line, contract, named):
    path = site_copy / module
    path.write_text(path.read_text() + f"\n{line}  # added by tests/test_layers.py\n")
    result = lint(site_copy)
    assert result.returncode != 0, f"lint-imports passed with {line!r} in {module}:\n{result.stdout}"
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and named in broken, result.stdout
