"""Visitor traffic against the origin (or the edge): the homepage, health and the session API.

Run headless against a running stack:
    .venv/bin/locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8080
"""

from __future__ import annotations

from locust import FastHttpUser, between, task


class Visitor(FastHttpUser):
    wait_time = between(0.1, 0.5)

    @task(5)
    def homepage(self) -> None:
        self.client.get("/", name="/")

    @task(1)
    def who_am_i(self) -> None:
        with self.client.get("/api/auth/me", name="/api/auth/me", catch_response=True) as resp:
            if resp.status_code == 401:
                resp.success()  # anonymous visitors are expected here
