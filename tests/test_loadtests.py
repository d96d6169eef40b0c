"""The Locust scenarios (loadtests/scenarios) run headless for a few seconds against the test stack, all
at once: visitors through the edge, an editor and flash buyers through the origin, and buyers of a
sale whose database was corrupted on purpose (their after-run check must fail the run).

``--stop-timeout`` lets each user finish what it began (a buyer's purchase, an editor's round of
changes) however slow the shared machine is. Each run's statistics come from ``--json-file``, written
at shutdown after the after-run checks (the ``--csv`` files are snapshots rewritten every second and
can miss the last ones). Timing targets (e.g. the editor's 2 s at the edge) are measured by the
scenarios, not asserted here: the editor runs with a lenient ``--edge-within``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import select, text

from visitors import visitor

LOADTESTS = Path(__file__).resolve().parents[1] / "loadtests"
SECONDS = 9
PAGINATED_CATEGORY = "life"


@dataclass
class Run:
    code: int
    stats: dict[str, tuple[int, int]]  # "METHOD name" -> (requests, failures)
    log: str

    def count(self, name: str, method: str = "GET") -> int:
        return self.stats.get(f"{method} {name}", (0, 0))[0]

    def failed(self) -> dict[str, int]:
        return {k: f for k, (_n, f) in self.stats.items() if f}


def iso(delta_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat()


@cache
def flash_check():
    """loadtests/scenarios/flash_check.py (not a package of the project: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("flash_check", LOADTESTS / "scenarios" / "flash_check.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def api(origin, editor_token):
    with visitor() as session:  # the editor, from an address of its own
        session.headers["Authorization"] = f"Bearer {editor_token}"

        def call(method: str, path: str, **kwargs) -> dict:
            resp = session.request(method, f"{origin}{path}", timeout=30, **kwargs)
            assert resp.status_code in (200, 201), resp.text
            return resp.json()

        yield call


def corrupted_sale(app, api, settings) -> int:
    """A sale of 2 units that already started, with two confirmed orders of 3 units for one buyer written
    straight into the database: oversold, and over the limit of 1."""
    from breakwater.accounts.models import User
    from breakwater.extensions import db

    product = api(
        "POST", "/api/editor/flash/products", json={"name": f"Corrupt {uuid.uuid4().hex[:8]}", "price_cents": 1}
    )
    window = {"starts_at": iso(-1), "ends_at": iso(600)}
    body = {"product_id": product["product"]["id"], "stock": 2, "limit": 1, **window}
    sale = api("POST", "/api/editor/flash/sales", json=body)["sale"]
    with app.app_context(), db.primary():
        editor_id = db.session.scalars(select(User.id).where(User.name == settings["EDITOR_NAME"])).one()
        for slot in (1, 2):
            db.session.execute(
                text(
                    "INSERT INTO flash_orders (id, sale_id, user_id, slot, quantity, status, idempotency_key, "
                    "region_code, address_detail, recipient_name, phone, failure) VALUES "
                    "(:id, :sale, :user, :slot, 3, 'confirmed', :key, '110101', 'x', 'x', '13800138000', '')"
                ),
                {"id": uuid.uuid4().hex, "sale": sale["id"], "user": editor_id, "slot": slot, "key": uuid.uuid4().hex},
            )
        db.session.commit()
    return sale["id"]


@pytest.fixture(scope="module")
def runs(stack, settings, app, api, tmp_path_factory):
    """Four Locust processes side by side; {name: Run} once all have exited."""
    tmp = tmp_path_factory.mktemp("locust")
    # Enough articles in one category for a second page, so visitors page through it.
    made = [
        api("POST", "/api/editor/articles", json={
            "title": f"Paging {i}", "slug": f"paging-{uuid.uuid4().hex[:10]}", "body": "x",
            "category": PAGINATED_CATEGORY, "publish": True,
        })["article"]["id"]
        for i in range(11)
    ]  # fmt: skip
    broken_sale = corrupted_sale(app, api, settings)
    env = stack.settings.child_env()  # BREAKWATER_STATE_DIR included: the scenarios find the secrets there
    origin, edge = settings.origin_url, settings.edge_url
    plan = {
        "visitor": ("scenarios/visitor.py", edge, 5, ["--visitor-wait", "0.15"]),
        "editor": ("scenarios/editor.py", origin, 1, ["--editor-pace", "0.3", "--edge-within", "15"]),
        "buyer": ("scenarios/flash_buyer.py", origin, 4, ["--flash-stock", "2", "--flash-start-in", "3"]),
        "broken": ("scenarios/flash_buyer.py", origin, 1, ["--flash-sale", str(broken_sale)]),
    }
    procs = {}
    for name, (locustfile, host, users, extra) in plan.items():
        log = (tmp / f"{name}.log").open("w")
        cmd = [
            sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{SECONDS}s", "--stop-timeout", "30", "--host", host, "--json-file", str(tmp / name),
            "--only-summary", *extra,
        ]  # fmt: skip
        procs[name] = (subprocess.Popen(cmd, cwd=LOADTESTS, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    results = {}
    for name, (proc, log) in procs.items():
        code = proc.wait(timeout=SECONDS + 120)
        log.close()
        path = tmp / f"{name}.json"
        entries = json.loads(path.read_text()) if path.exists() else []
        stats = {f"{e['method']} {e['name']}": (e["num_requests"], e["num_failures"]) for e in entries}
        results[name] = Run(code, stats, (tmp / f"{name}.log").read_text()[-3000:])
    yield results | {"broken_sale": broken_sale}
    for article_id in made:
        api("DELETE", f"/api/editor/articles/{article_id}")


def test_visitors_read_every_kind_of_page_through_the_edge(runs):
    run = runs["visitor"]
    assert run.code == 0 and not run.failed(), run.log
    for name in ("/", "/articles/[slug]", "/categories/[slug]", "/categories/[slug]/page/[n]", "/regions"):
        assert run.count(name) > 0, f"no {name} request: {sorted(run.stats)}"
    for level in ("provinces", "cities", "districts"):  # the picker's cascade, from the hashed static files
        assert run.count(f"regions: {level} (static)") > 0, sorted(run.stats)


def test_editor_changes_show_at_the_origin_at_once_and_then_at_the_edge(runs):
    run = runs["editor"]
    assert run.code == 0 and not run.failed(), run.log
    assert run.count("/api/auth/login (editor)", "POST") == 1
    assert run.count("/api/editor/articles", "POST") >= 1 and run.count("/api/editor/ads", "POST") == 1
    for change in ("new ad", "new article", "ad edit", "article edit"):  # its ad, then one round of changes
        assert run.count(f"{change}: origin, next read", "CHECK") >= 1, f"no {change}: {sorted(run.stats)}"
        assert run.count(f"{change}: edge within 15 s", "CHECK") >= 1, f"no {change}: {sorted(run.stats)}"
    assert run.count("/api/editor/ads/[id]", "DELETE") == 1, "the editor did not remove its ad when it stopped"


def test_flash_buyers_sell_exactly_the_stock_and_the_after_run_checks_pass(runs):
    run = runs["buyer"]
    assert run.code == 0 and not run.failed(), run.log
    assert run.count("/api/auth/register", "POST") == 4 and run.count("/api/auth/login", "POST") == 4
    assert run.count("/api/flash/[id]") > 0 and run.count("/api/flash/[id]/orders", "POST") >= 4
    # 4 buyers, 2 units, limit 1: exactly 2 accepted, each replayed by its double-click and seen written.
    assert run.count("flash: accepted order written", "CHECK") == 2, run.log
    assert run.count("flash: same Idempotency-Key, same order", "CHECK") == 2
    assert run.count("/api/orders/[id]") >= 2
    names = [f"flash: {n}" for n in flash_check().NAMES] + ["flash: gate stock == database stock"]
    for name in names:
        assert run.stats.get(f"CHECK {name}") == (1, 0), f"{name}: {run.stats.get(f'CHECK {name}')}"


def test_the_after_run_check_fails_the_run_when_the_sale_is_broken(runs, settings):
    run = runs["broken"]
    assert run.code == 1, run.log
    assert run.stats.get("CHECK flash: no oversell") == (1, 1), run.log
    assert run.stats.get("CHECK flash: at most the limit per buyer") == (1, 1), run.log
    assert run.stats.get("CHECK flash: no duplicate orders") == (1, 0), run.log

    # The checker alone, on the same sale: duplicates and lost orders among the run's own 202s too.
    check = flash_check()
    db_url = settings.database_url(*settings.primary_address)
    verdicts = {v.name: v for v in check.check_sale(db_url, runs["broken_sale"], [])}
    assert not verdicts["no oversell"].ok and "units confirmed of 2;" in verdicts["no oversell"].detail
    limit = verdicts["at most the limit per buyer"]
    assert not limit.ok and "6 (limit 1)" in limit.detail
    accepted = [(1, "key-a", "same-order"), (2, "key-b", "same-order")]  # one order id for two requests
    verdicts = {v.name: v for v in check.check_sale(db_url, runs["broken_sale"], accepted)}
    assert not verdicts["no duplicate orders"].ok
    assert not verdicts["no accepted order lost"].ok and "same-order" in verdicts["no accepted order lost"].detail
