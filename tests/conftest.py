"""Session fixtures: one private stack (MariaDB primary + 2 replicas, Redis, gunicorn, Celery, Nginx)
on free ports in a temporary directory, started with the same code as `make run`."""

from __future__ import annotations

import os
import uuid
from contextlib import closing

import pytest
import requests

from breakwater_tools.stack import Stack
from breakwater_tools.stack.mariadb import admin
from stack_helpers import scratch_dir, stack_env
from visitors import visitor

pytest_plugins = ["browser"]

#: Seconds each slow file took on the 2-core machine (``--durations``). ``make test`` hands whole files to
#: two workers (``--dist loadfile --no-loadscope-reorder``) in this order, longest first, so that both
#: finish at about the same time; files not listed follow in collection order.
FILE_SECONDS = {
    "test_queues.py": 88, "test_flash.py": 68, "test_openapi.py": 34, "test_promotion.py": 33,
    "test_browser.py": 23, "test_pages.py": 22, "test_edge.py": 20, "test_failover.py": 19,
    "test_bench_spike.py": 19, "test_stack_programs.py": 17, "test_flash_upstream.py": 17,
    "test_loadtests.py": 14, "test_redis_hung.py": 13, "test_cli.py": 13, "test_breaker.py": 12,
    "test_worker_classes.py": 10, "test_cache.py": 10, "test_visitor_limits.py": 10,
    "test_flash_database.py": 9, "test_origin.py": 8, "test_bench_hygiene.py": 8,
    "test_sale_page.py": 45, "test_responsive.py": 13,
}  # fmt: skip


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))  # stable: a file's own order is kept


#: tests/cluster/ needs root and network namespaces and takes minutes: `make test-cluster` runs it;
#: tests/monitoring/ waits for Prometheus to see faults and alerts fire: `make test-monitoring` runs it
collect_ignore = [
    suite
    for suite, flag in (("cluster", "BREAKWATER_TEST_CLUSTER"), ("monitoring", "BREAKWATER_TEST_MONITORING"))
    if os.environ.get(flag) != "1"
]


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    with scratch_dir(tmp_path_factory, "stack") as state:
        st = Stack(stack_env(state), echo=lambda _msg: None)
        try:
            st.up(install=True, echo_steps=False)
            yield st
        finally:
            st.down(quiet=True, kill=True)


@pytest.fixture(scope="session")
def settings(stack):
    return stack.settings


@pytest.fixture(scope="session")
def app(settings):
    from breakwater.app import create_app
    from breakwater.extensions import db

    flask_app = create_app(settings)
    yield flask_app
    db.dispose()


@pytest.fixture()
def db(app):
    from breakwater.extensions import db as database

    with app.app_context():
        yield database


@pytest.fixture(scope="session")
def origin(settings) -> str:
    return settings.origin_url


@pytest.fixture(scope="session")
def edge(settings) -> str:
    """The stack's Varnish edge (in front of the origin)."""
    return settings.edge_url


@pytest.fixture()
def http() -> requests.Session:
    """A visitor: a session whose connections come from a 127/8 address of its own (tests/visitors.py), so
    that its requests count against its own per-address limits, never against another test's."""
    with visitor() as session:
        yield session


@pytest.fixture()
def unique_name() -> str:
    return "u" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def node_admin(stack):
    """``node_admin(i)`` -> an administrator connection to node i (0 = primary)."""

    def connect(index: int):
        return closing(admin(stack.layout.nodes[index]))

    return connect


@pytest.fixture(scope="session")
def editor_token(app, settings) -> str:
    """A bearer token for the seeded editor."""
    from sqlalchemy import select

    from breakwater.accounts.models import User
    from breakwater.editor.auth import issue_token
    from breakwater.extensions import db as database

    with app.app_context(), database.primary():
        editor = database.session.scalars(select(User).where(User.name == settings["EDITOR_NAME"])).one()
        return issue_token(database.session, editor, "tests")


@pytest.fixture()
def editor_api(origin, editor_token):
    """``editor_api(method, path, json=...)`` against /api/editor with the bearer token. The editor is an
    operator, but its writes pass Nginx's write limit per address like anyone's: an address of its own."""
    session = visitor()
    session.headers["Authorization"] = f"Bearer {editor_token}"

    def call(method: str, path: str, **kwargs):
        return session.request(method, f"{origin}/api/editor{path}", timeout=15, **kwargs)

    yield call
    session.close()


@pytest.fixture()
def slug() -> str:
    return "t-" + uuid.uuid4().hex[:10]
