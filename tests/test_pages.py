"""Static pages: emitted by the builder, rebuilt by the real worker after editors' commits, served by
the real Nginx origin; atomic under concurrent readers; ad windows on time; a killed worker's build
runs again; bad output folders refused with the old files intact."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from fault_recorder import FaultRecorder
from routing_helpers import wait_for, worker_children
from stack_helpers import scratch_dir

BREAKWATER = str(Path(sys.executable).parent / "breakwater")
ARTICLE = {"title": "静态页测试", "summary": "摘要", "category": "tech", "body": "正文"}


@pytest.fixture(scope="module")
def static_dir(settings) -> Path:
    return Path(settings["STATIC_DIR"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def publish(editor_api, slug: str, **extra) -> dict:
    resp = editor_api("POST", "/articles", json={**ARTICLE, "slug": slug, "publish": True, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()["article"]


def test_the_stack_starts_with_every_page_emitted(static_dir, origin):
    manifest = json.loads((static_dir / "_manifest.json").read_text())
    urls = set(manifest["pages"])
    assert {"/", "/regions", "/categories/news", "/articles/breakwater-launch"} <= urls
    assert any(u.startswith("/assets/site.") and u.endswith(".css") for u in urls)
    assert sum(u.startswith("/regions-data/") for u in urls) > 3300  # one file per parent region, streets too

    def stale() -> list[str]:
        """Pages whose file is not the manifest's (a background rebuild writes the files, then the manifest)."""
        entries = json.loads((static_dir / "_manifest.json").read_text())["pages"]
        return [url for url, entry in entries.items() if sha(static_dir / entry["file"]) != entry["hash"]]

    wait_for(lambda: not stale(), timeout=15, interval=0.5, what="every emitted file matching its manifest entry")
    for url, entry in manifest["pages"].items():
        path = static_dir / entry["file"]
        if path.suffix in (".html", ".json", ".css"):
            twin = path.with_name(path.name + ".gz")
            assert gzip.decompress(twin.read_bytes()) == path.read_bytes(), url
            assert twin.stat().st_mtime == path.stat().st_mtime, url
    home = requests.get(f"{origin}/", timeout=10)
    assert home.text == (static_dir / "index.html").read_text(encoding="utf-8")
    assert home.text.rstrip().endswith("<!--bw:end-->")
    assert requests.get(f"{origin}/_manifest.json", timeout=10).status_code == 404


def test_pages_are_the_same_for_every_visitor(origin, static_dir):
    html = (static_dir / "index.html").read_text(encoding="utf-8")
    assert "csrf" not in html.lower() and "登录" in html and "Log in" not in html
    assert "carousel" in html and re.search(r'<img src="/media/[0-9a-f]{16}-1280\.jpg" srcset="[^"]+ 320w', html)
    region_root = json.loads((static_dir / "regions-data").glob("root.*.json").__next__().read_text())
    assert len(region_root["regions"]) == 34 and region_root["regions"][0]["next"].startswith("/regions-data/")


def test_region_files_load_one_level_at_a_time_down_to_streets(origin):
    """The picker's first screen gets the provinces only; each choice fetches one small hashed file."""
    page = requests.get(f"{origin}/regions", timeout=10).text
    url = page.split('data-root="', 1)[1].split('"', 1)[0]
    for code in ("440000", "440300", "440305"):
        resp = requests.get(origin + url, timeout=10)
        assert resp.status_code == 200 and "immutable" in resp.headers["Cache-Control"], url
        assert "max-age=31536000" in resp.headers["Cache-Control"]
        assert len(resp.content) < 20_000, (url, len(resp.content))  # one level, not the whole tree
        url = next(r["next"] for r in resp.json()["regions"] if r["code"] == code)
    streets = requests.get(origin + url, timeout=10).json()
    assert streets["parent"] == "440305"
    assert {"code": "440305001", "name": "南头街道", "level": "street"} in streets["regions"]
    assert all("next" not in s for s in streets["regions"])


def test_publish_rewrites_exactly_the_affected_pages(editor_api, static_dir, origin, slug):
    unrelated = static_dir / "categories" / "life" / "index.html"
    before = (unrelated.stat().st_mtime_ns, sha(unrelated))
    home_before = sha(static_dir / "index.html")
    article = publish(editor_api, slug)
    page = static_dir / "articles" / slug / "index.html"

    def in_manifest():
        return f"/articles/{slug}" in json.loads((static_dir / "_manifest.json").read_text())["pages"]

    wait_for(in_manifest, timeout=15, interval=0.05, what="the article's static page")
    wait_for(lambda: sha(static_dir / "index.html") != home_before, timeout=15, interval=0.05, what="the homepage")
    assert ARTICLE["title"] in page.read_text(encoding="utf-8")
    served = requests.get(f"{origin}/articles/{slug}", timeout=10)
    assert served.status_code == 200 and served.text == page.read_text(encoding="utf-8")
    tech = (static_dir / "categories" / "tech" / "index.html").read_text(encoding="utf-8")
    assert f"/articles/{slug}" in tech
    assert (unrelated.stat().st_mtime_ns, sha(unrelated)) == before, "an unrelated page was rewritten"
    manifest = json.loads((static_dir / "_manifest.json").read_text())
    assert manifest["pages"][f"/articles/{slug}"]["keys"][0] == f"article-{article['id']}"

    # Unpublished: the page disappears, the origin falls back to the app (404).
    assert editor_api("POST", f"/articles/{article['id']}/unpublish").status_code == 200
    wait_for(lambda: not page.exists(), timeout=15, interval=0.05, what="the page to be removed")
    assert requests.get(f"{origin}/articles/{slug}", timeout=10).status_code == 404


def test_a_renamed_slug_leaves_a_redirect(editor_api, static_dir, origin, slug):
    article = publish(editor_api, slug)
    old = static_dir / "articles" / slug / "index.html"
    wait_for(old.exists, timeout=15, interval=0.05, what="the first page")
    renamed = slug + "-new"
    assert editor_api("PATCH", f"/articles/{article['id']}", json={"slug": renamed}).status_code == 200
    wait_for(lambda: (static_dir / "articles" / renamed / "index.html").exists(), timeout=15, what="the new page")
    wait_for(lambda: not old.exists(), timeout=15, what="the old page to go")
    resp = requests.get(f"{origin}/articles/{slug}", allow_redirects=False, timeout=10)
    assert resp.status_code == 301 and resp.headers["Location"].endswith(f"/articles/{renamed}")


def test_publishes_in_a_burst_share_one_homepage_build(editor_api, app, origin):
    from breakwater.pages.tasks import history

    broker = app.extensions["breakwater.redis"]
    wait_for(lambda: not broker.exists("bw:pages:scheduled"), timeout=15, what="the queue to drain")
    time.sleep(0.5)
    started = time.time()
    slugs = ["burst-" + uuid.uuid4().hex[:8] for _ in range(10)]
    threads = [threading.Thread(target=publish, args=(editor_api, s)) for s in slugs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published = time.time()

    def all_built():
        html = requests.get(f"{origin}/categories/tech", timeout=10).text
        return all(f"/articles/{s}" in html for s in slugs) or None

    wait_for(all_built, timeout=20, interval=0.1, what="the burst on the static homepage")
    time.sleep(1)
    builds = [b for b in history(broker, 50) if b["at"] >= started and "/" in b["written"]]
    # The publishes took longer than the coalescing window here, so a second build may follow; never ten.
    windows = max(1, int((published - started) / 0.3) + 1)
    assert 1 <= len(builds) <= min(windows, 3), (len(builds), published - started)


def wait_for_a_quiet_clock(app, seconds: float) -> None:
    """Until no page changes by the clock alone in the next ``seconds``: the homepage shows the sales and ads of
    the moment, and other tests' sales and ad windows open and close on their own (each also rebuilds the
    homepage in the background). Asked of the app's own registry (pages.registry.seconds_to_next_change)."""
    from breakwater.extensions import db
    from breakwater.pages import registry

    deadline = time.monotonic() + 90
    while True:
        with app.app_context(), db.primary():
            upcoming = registry.seconds_to_next_change(db.session)
        if upcoming is None or upcoming > seconds:
            return
        assert time.monotonic() < deadline, f"the homepage keeps changing by the clock ({upcoming:.1f} s ahead)"
        time.sleep(upcoming + 1.5)  # past that edge and its rebuild


def test_readers_never_see_a_torn_homepage_during_20_rebuilds(app, origin, static_dir):
    from breakwater.pages.builder import Builder

    wait_for_a_quiet_clock(app, 40)  # no background rebuild of / may rewrite the manifest in between

    def torn(resp) -> str | None:
        text = resp.text
        if not text.rstrip().endswith("<!--bw:end-->") or "<!doctype html>" not in text:
            return f"torn ({len(text)} characters, ending {text[-60:]!r})"
        return None

    targets = [("/", {}), ("/", {"Accept-Encoding": "gzip"})]
    reads = FaultRecorder(origin, targets, readers=4, timeout=10, pause=0, check=torn).start()
    try:
        reads.wait_rows("before", 8)
        reads.mark("fault")  # the rebuilds
        builder, manifest_file = Builder(app), static_dir / "_manifest.json"
        for _ in range(20):
            # A background build (the stack's pages worker) that read the manifest before this edit writes it
            # back when it ends, and then this build finds / unchanged: edit and build again.
            for _attempt in range(5):
                manifest = json.loads(manifest_file.read_text())
                manifest["pages"]["/"]["hash"] = "forget"  # so the build really replaces the file
                manifest_file.write_text(json.dumps(manifest))
                with app.app_context():
                    report = builder._build(["/"], {}, full=False, dry_run=False)
                if report.written:
                    break
            assert report.written == ["/"]  # replaced through a temp file and os.replace
        reads.mark("recovered")
        reads.wait_rows("after", 8)
    finally:
        reads.stop()
    assert len(reads.by_phase()["during"]) > 20, reads.report()
    reads.assert_all_served(max_seconds=3)


def test_an_ad_window_opening_soon_appears_without_a_publish(editor_api, origin, static_dir):
    title = "限时广告 " + uuid.uuid4().hex[:6]
    starts = datetime.now(UTC) + timedelta(seconds=3)
    resp = editor_api(
        "POST", "/ads",
        json={"slot": "sidebar", "title": title, "link": "https://example.com", "starts_at": starts.isoformat()},
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    home = static_dir / "index.html"
    assert title not in home.read_text(encoding="utf-8")
    wait_for(lambda: title in home.read_text(encoding="utf-8"), timeout=20, interval=0.1, what="the ad to appear")
    assert datetime.now(UTC) >= starts - timedelta(seconds=0.5), "shown before its window opened"
    assert title in requests.get(f"{origin}/", timeout=10).text


def test_a_worker_killed_mid_build_builds_again(app, stack, static_dir):
    """SIGKILL of the pool process running a build: the task is redelivered and the pages end up right."""
    from breakwater.pages import tasks
    from breakwater.pages.builder import LOCK

    region_files = sorted((static_dir / "regions-data").glob("*.json"))
    for f in region_files:  # every region file must be written again: a build of a few seconds
        f.unlink()
    with app.app_context():
        tasks.queue_rebuild(("regions",), "", 0)
    lock = (static_dir / LOCK).open("a")

    def build_running() -> bool:
        import fcntl

        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False

    wait_for(build_running, timeout=20, interval=0.01, what="the build to start")
    written_when_killed = len(list((static_dir / "regions-data").glob("*.json")))
    for pid in worker_children(stack, "pages"):
        os.kill(pid, signal.SIGKILL)
    assert written_when_killed < len(region_files), "the build had finished before the kill"
    wait_for(
        lambda: len(list((static_dir / "regions-data").glob("*.json"))) == len(region_files),
        timeout=60, interval=0.2, what="the redelivered build",
    )  # fmt: skip
    broker = app.extensions["breakwater.redis"]
    wait_for(lambda: not broker.smembers(tasks.PENDING), timeout=30, what="the pending entries to be done")
    manifest = json.loads((static_dir / "_manifest.json").read_text())
    for f in region_files:
        entry = manifest["pages"]["/regions-data/" + f.name]
        assert sha(f) == entry["hash"]
    lock.close()


def test_building_into_an_unwritable_folder_fails_clearly_and_keeps_the_files(tmp_path, settings, static_dir):
    target = tmp_path / "site"
    target.mkdir()
    (target / "index.html").write_text("old page")
    target.chmod(0o555)
    env = {**settings.child_env(), "BREAKWATER_STATIC_DIR": str(target)}
    try:
        if os.geteuid() == 0:  # root ignores permission bits: make the folder a read-only mount instead
            subprocess.run(["mount", "--bind", "-o", "ro", str(target), str(target)], check=True)
        result = subprocess.run([BREAKWATER, "pages", "build"], env=env, capture_output=True, text=True)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(target)], check=False)
        target.chmod(0o755)
    assert result.returncode == 1
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(target) in lines[0], result.stderr
    assert (target / "index.html").read_text() == "old page"


def test_dry_run_lists_changes_and_writes_nothing(tmp_path_factory, app, settings):
    wait_for_a_quiet_clock(app, 30)  # the homepage must not change between the builds by a sale's start or end
    with scratch_dir(tmp_path_factory, "build") as out:  # a full build writes 7,000 files: in memory if possible
        env = {**settings.child_env(), "BREAKWATER_STATIC_DIR": str(out)}
        cmd = [BREAKWATER, "pages", "build"]
        dry = subprocess.run([*cmd, "--dry-run"], env=env, capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
        assert "  write   /" in dry.stdout and "would write:" in dry.stdout
        assert not (out / "index.html").exists()
        full = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert full.returncode == 0 and (out / "index.html").exists()
        again = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert "written: 0," in again.stdout and "removed: 0" in again.stdout, again.stdout


def test_a_missing_static_file_falls_back_to_the_app(origin, static_dir):
    page = static_dir / "regions" / "index.html"
    saved = page.read_bytes()
    page.unlink()
    (page.with_name("index.html.gz")).unlink(missing_ok=True)
    try:
        resp = requests.get(f"{origin}/regions", timeout=10)
        assert resp.status_code == 200 and "xkey" in {k.lower() for k in resp.headers}
        assert resp.text.encode() == saved
    finally:
        page.write_bytes(saved)


def test_publish_reaches_the_edge_through_its_purge(editor_api, edge, origin, slug):
    article = publish(editor_api, slug)
    url = f"{edge}/articles/{slug}"
    wait_for(lambda: requests.get(url, timeout=10).status_code == 200, timeout=15, what="the page at the edge")
    first = requests.get(url, timeout=10)
    assert requests.get(url, timeout=10).headers["X-Edge-Cache"] == "HIT"
    home = requests.get(f"{edge}/", timeout=10)
    assert requests.get(f"{edge}/", timeout=10).headers["X-Edge-Cache"] == "HIT"
    resp = editor_api("PATCH", f"/articles/{article['id']}", json={"title": "边缘已更新"})
    assert resp.status_code == 200
    wait_for(lambda: "边缘已更新" in requests.get(url, timeout=10).text, timeout=15, what="the purge of the article")
    wait_for(lambda: "边缘已更新" in requests.get(f"{edge}/", timeout=10).text, timeout=15, what="the homepage purge")
    assert first.text != requests.get(url, timeout=10).text and home.text != requests.get(f"{edge}/", timeout=10).text


def test_hashed_files_are_not_purged_one_by_one():
    """A regions rebuild changes ~3,400 hashed files: their names are new, nothing at the edge is stale."""
    from breakwater.pages.tasks import urls_to_purge

    changed = ["/", "/regions", "/assets/site.0123456789.css", "/regions-data/440305.0123456789.json"]
    assert urls_to_purge(changed) == ["/", "/regions"]
