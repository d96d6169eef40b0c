"""Read-heavy scenario for `make bench-db`: logged-in visitors polling GET /api/auth/me.

Each simulated user logs in once (users bench0000.. are created by the bench runner) and then
reads its own account as fast as it can: one indexed primary-key SELECT per request.

With BENCH_CAUSAL_TOKEN (a signed token from a real write, see bench_db.py) every request sends it
as X-Causal-Token, so the router runs its causal check on each read; a response that does not hand
the token back counts as a failure (the server did not take the causal path).
"""

from __future__ import annotations

import itertools
import os

from locust import FastHttpUser, constant, task

_ids = itertools.count()
USERS = int(os.environ.get("BENCH_ACCOUNTS", "64"))
PASSWORD = os.environ.get("BENCH_PASSWORD", "bench-password")
TOKEN = os.environ.get("BENCH_CAUSAL_TOKEN", "")
HEADERS = {"X-Causal-Token": TOKEN} if TOKEN else {}


class Reader(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        name = f"bench{next(_ids) % USERS:04d}"
        self.client.post("/api/auth/login", json={"name": name, "password": PASSWORD}, name="login")

    @task
    def me(self) -> None:
        with self.client.get("/api/auth/me", name="/api/auth/me", headers=HEADERS, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif TOKEN and not resp.headers.get("X-Causal-Token"):
                resp.failure("no X-Causal-Token in the response: the token was not taken into account")
