"""Read-heavy scenario for `make bench-db`: logged-in visitors polling GET /api/auth/me.

Each simulated user logs in once (users bench0000.. are created by the bench runner) and then
reads its own account as fast as it can: one indexed primary-key SELECT per request.
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, task

_ids = itertools.count()
USERS = int(os.environ.get("BENCH_ACCOUNTS", "64"))
PASSWORD = os.environ.get("BENCH_PASSWORD", "bench-password")


class Reader(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        name = f"bench{next(_ids) % USERS:04d}"
        self.client.post("/api/auth/login", json={"name": name, "password": PASSWORD}, name="login")

    @task
    def me(self) -> None:
        self.client.get("/api/auth/me", name="/api/auth/me")
