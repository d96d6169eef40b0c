"""Engines and sessions: one engine (and pool) per MariaDB node.

The application user writes and reads through ``db.session``; the monitor user reads
replication state for /healthz. Read/write routing across replicas builds on ``self.nodes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from breakwater.settings import Settings


class PrimaryUnavailable(RuntimeError):
    """The primary cannot be reached, so writes cannot be accepted right now."""


@dataclass
class NodeEngines:
    name: str
    role: str
    host: str
    port: int
    app: Engine
    monitor: Engine


def _engine(url: str, timeout: float, pool_size: int = 10) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=max(timeout, 1.0) * 2,
        connect_args={"connect_timeout": max(1, round(timeout)), "read_timeout": 30, "write_timeout": 30},
    )


class Database:
    def __init__(self) -> None:
        self.nodes: list[NodeEngines] = []
        self.session: scoped_session[Session] | None = None

    def init_app(self, app: Flask, settings: Settings) -> None:
        timeout = settings.float("DB_CONNECT_TIMEOUT")
        addresses = [("primary", "primary", settings.primary_address)]
        addresses += [(f"replica{i}", "replica", a) for i, a in enumerate(settings.replica_addresses, start=1)]
        self.nodes = [
            NodeEngines(
                name,
                role,
                host,
                port,
                _engine(settings.database_url(host, port), timeout),
                _engine(settings.database_url(host, port, "DB_MONITOR_USER"), timeout, pool_size=1),
            )
            for name, role, (host, port) in addresses
        ]
        self.session = scoped_session(sessionmaker(bind=self.primary, expire_on_commit=False))
        app.extensions["breakwater.db"] = self

        @app.teardown_appcontext
        def _remove_session(_exc: BaseException | None) -> None:
            if self.session is not None:
                self.session.remove()

    @property
    def primary(self) -> Engine:
        return self.nodes[0].app

    @property
    def replicas(self) -> list[NodeEngines]:
        return self.nodes[1:]

    def dispose(self) -> None:
        for node in self.nodes:
            node.app.dispose()
            node.monitor.dispose()
