"""One GET path as fast as possible (BENCH_PATH), for side-by-side endpoint comparisons."""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BENCH_PATH", "/")


class Getter(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get(PATH, name="target")
