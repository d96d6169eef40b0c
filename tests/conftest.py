"""Session fixtures: one private stack (MariaDB primary + 2 replicas, Redis, gunicorn, Celery, Nginx)
on free ports in a temporary directory, started with the same code as `make run`."""

from __future__ import annotations

import os
import uuid
from contextlib import closing
from pathlib import Path

import pytest
import requests

from breakwater.stack import Stack
from breakwater.stack.mariadb import admin
from breakwater.stack.ports import free_ports

pytest_plugins = ["browser"]

PORT_KEYS = (
    "PRIMARY_PORT", "REDIS_PORT", "REDIS_CACHE_PORT", "APP_PORT", "ORIGIN_PORT", "EDGE_PORT",
    "RABBITMQ_PORT", "RABBITMQ_DIST_PORT", "SMTP_PORT", "FLOWER_PORT",
)  # fmt: skip


def stack_env(state_dir: Path, replicas: int = 2) -> dict[str, str]:
    ports = free_ports(len(PORT_KEYS) + replicas)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKWATER_")}
    env.update({f"BREAKWATER_{key}": str(port) for key, port in zip(PORT_KEYS, ports, strict=False)})
    env["BREAKWATER_REPLICA_PORTS"] = ",".join(str(p) for p in ports[len(PORT_KEYS) :])
    env["BREAKWATER_STATE_DIR"] = str(state_dir / "state")
    env["BREAKWATER_STATIC_DIR"] = str(state_dir / "static_build")
    env["BREAKWATER_WEB_WORKERS"] = "2"
    # Two cores shared: one process per prefork queue, a few greenlets for the I/O queues.
    for queue in ("PAGES", "ORDERS", "DEFAULT"):
        env[f"BREAKWATER_WORKER_{queue}_CONCURRENCY"] = "1"
    env["BREAKWATER_WORKER_PURGE_CONCURRENCY"] = "10"
    env["BREAKWATER_WORKER_NOTIFY_CONCURRENCY"] = "10"
    env["BREAKWATER_WORKER_SHUTDOWN_TIMEOUT"] = "5"
    env["BREAKWATER_OUTBOX_RELAY_INTERVAL"] = "1"
    env["BREAKWATER_OUTBOX_GRACE"] = "2"
    env["BREAKWATER_DEBUG_ROUTES"] = "1"
    # Many tests check read-your-writes and X-Cache through the origin: no Nginx microcache here
    # (tests/test_origin.py starts its own Nginx with it), and logins from 127.0.0.1 are not throttled.
    env["BREAKWATER_ORIGIN_MICROCACHE"] = "0"
    env["BREAKWATER_ORIGIN_LOGIN_RATE"] = "100r/s"
    env["BREAKWATER_ORIGIN_LOGIN_BURST"] = "200"
    # The flash-sale tests send a thousand purchase attempts from this one address at once.
    env["BREAKWATER_ORIGIN_WRITE_RATE"] = "5000r/s"
    env["BREAKWATER_ORIGIN_WRITE_BURST"] = "5000"
    (state_dir / "static_build").mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    st = Stack(stack_env(tmp_path_factory.mktemp("stack")), echo=lambda _msg: None)
    try:
        st.up(install=True, echo_steps=False)
        yield st
    finally:
        st.down(quiet=True)


@pytest.fixture(scope="session")
def settings(stack):
    return stack.settings


@pytest.fixture(scope="session")
def app(settings):
    from breakwater import create_app
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
    return f"http://{settings['HOST']}:{settings.int('EDGE_PORT')}"


@pytest.fixture()
def http() -> requests.Session:
    with requests.Session() as session:
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
    """``editor_api(method, path, json=...)`` against /api/editor with the bearer token."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {editor_token}"

    def call(method: str, path: str, **kwargs):
        return session.request(method, f"{origin}/api/editor{path}", timeout=15, **kwargs)

    yield call
    session.close()


@pytest.fixture()
def slug() -> str:
    return "t-" + uuid.uuid4().hex[:10]
