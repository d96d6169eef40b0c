"""The client's own address at every layer, and limits that no client can spend for another.

Visitors come through the edge, each from an address of its own (tests/visitors.py). The edge appends the
visitor to X-Forwarded-For; the origin believes only the edge's word; the app only the origin's. What the
app saw is read from its access log line (``client``)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import requests

from routing_helpers import wait_for
from visitors import visitor


def _client_seen(stack, tag: str) -> str:
    """The ``client`` of the app's access line for the request whose path carries ``tag``."""
    logs = [stack.supervisor.log_path(app.name) for app in stack.layout.apps]
    found: list[str] = []

    def logged() -> bool:
        for path in logs:
            for line in path.read_text(errors="replace").splitlines():
                if tag in line and line.startswith("{"):
                    entry = json.loads(line)
                    if entry.get("msg") == "request" and tag in entry.get("path", ""):
                        found.append(entry["client"])
                        return True
        return False

    wait_for(logged, timeout=10, what=f"the app's access line for {tag}")
    return found[0]


@pytest.mark.parametrize("hop", ["edge", "origin", "app"])
def test_a_forged_x_forwarded_for_changes_nothing(stack, settings, hop):
    base = {"edge": settings.edge_url, "origin": settings.origin_url, "app": settings.app_url}[hop]
    tag = "xff-" + uuid.uuid4().hex[:10]
    with visitor() as client:
        response = client.get(
            f"{base}/api/auth/me/{tag}", headers={"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"},
            timeout=15,
        )  # fmt: skip
        assert response.status_code == 404, response.text  # a path the edge passes to the app and nobody caches
        assert _client_seen(stack, tag) == client.address


def _login(client: requests.Session, edge: str, name: str, password: str) -> requests.Response:
    return client.post(f"{edge}/api/auth/login", json={"name": name, "password": password}, timeout=30)


def _register(client: requests.Session, edge: str, name: str) -> requests.Response:
    return client.post(f"{edge}/api/auth/register", json={"name": name, "password": "right password"}, timeout=30)


def test_wrong_passwords_from_one_address_never_lock_the_owner_out(settings, unique_name):
    edge = settings.edge_url
    with visitor() as owner, visitor() as attacker:
        assert _register(owner, edge, unique_name).status_code == 201
        statuses = [_login(attacker, edge, unique_name, f"guess {i}").status_code for i in range(7)]
        assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses  # the guesser is throttled
        answer = _login(owner, edge, unique_name, "right password")
        assert answer.status_code == 200, answer.text  # the owner, from elsewhere, is not


def test_failures_from_many_addresses_slow_the_account_down_but_never_refuse_its_owner(settings, unique_name):
    edge = settings.edge_url
    with visitor() as owner:
        assert _register(owner, edge, unique_name).status_code == 201
    for i in range(7):  # one wrong password from each of seven addresses: no address reaches its own limit
        with visitor() as guesser:
            assert _login(guesser, edge, unique_name, f"guess {i}").status_code == 401
    with visitor() as owner:
        started = time.monotonic()
        answer = _login(owner, edge, unique_name, "right password")
        waited = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert waited >= 0.9, f"seven recent failures make the next attempt wait 1 s first (it took {waited:.2f} s)"


def test_registration_is_limited_per_address(settings):
    edge = settings.edge_url
    limit = int(settings["REGISTER_RATE"].split("/")[0])
    prefix = "r" + uuid.uuid4().hex[:8]
    with visitor() as bot, visitor() as person:
        statuses = [_register(bot, edge, f"{prefix}-{i}").status_code for i in range(limit + 2)]
        assert statuses == [201] * limit + [429, 429], statuses
        assert _register(person, edge, f"{prefix}-person").status_code == 201
