"""Limits per client through the edge, with the default limits: no client can spend another's.

Every client is a visitor with an address of its own (tests/visitors.py) coming through the edge, as a crowd
really arrives; the test stack keeps every limit at its default (Nginx's ORIGIN_WRITE_RATE 20 r/s, burst 40,
per address; the app's FLASH_ADDRESS_RATE 20/s per address and FLASH_USER_RATE per buyer)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from flash_helpers import buy, cli_env, gate_stock, make_buyers, make_sale, orders_of, wait_written
from visitors import fresh_address, visitor


@pytest.fixture(scope="module", autouse=True)
def _stack_env(stack):
    with cli_env(stack):
        yield


def test_one_client_draining_its_bucket_leaves_another_clients_writes_alone(settings):
    """Address A sends 200 parallel POST /api/auth/logout through the edge over two seconds (100 a second,
    16 at a time): Nginx's write limit (20 r/s, burst 40) refuses most of them (429). Meanwhile address B
    writes ten times a second (within its own limit) and every one of its writes is answered 200: the
    edge's one address is no longer a bucket that every visitor behind it shares."""
    edge = settings.edge_url
    flooder, other = fresh_address(), fresh_address()
    flood: list[tuple[float, int]] = []  # (monotonic time answered, status) per request of A
    writes: list[tuple[float, float, int]] = []  # (sent, answered, status) per write of B
    done = threading.Event()
    start = time.monotonic() + 0.2

    def from_a(i: int) -> None:
        time.sleep(max(0.0, start + i * 0.01 - time.monotonic()))
        with visitor(flooder) as client:
            status = client.post(f"{edge}/api/auth/logout", timeout=30).status_code
        flood.append((time.monotonic(), status))

    def from_b() -> None:
        with visitor(other) as client:
            while not done.is_set() or len(writes) < 3:
                sent = time.monotonic()
                status = client.post(f"{edge}/api/auth/logout", timeout=30).status_code
                writes.append((sent, time.monotonic(), status))
                time.sleep(0.1)

    b = threading.Thread(target=from_b, daemon=True)
    b.start()
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(from_a, range(200)))
    finally:
        done.set()
        b.join(60)
    a_counts = Counter(status for _, status in flood)
    b_counts = Counter(status for _, _, status in writes)
    print(f"A (200 parallel logouts from {flooder}): {dict(a_counts)}; B ({other}): {dict(b_counts)}")
    assert set(a_counts) <= {200, 429} and a_counts[429] > 0 and a_counts[200] > 0, a_counts
    # B wrote while A's bucket was empty: between A's first refusal and A's last answer.
    first_refused = min(t for t, status in flood if status == 429)
    last_answer = max(t for t, _ in flood)
    during = [status for sent, _, status in writes if first_refused <= sent <= last_answer]
    assert len(during) >= 5, f"{len(during)} writes of B while A was refused: the check proves too little"
    assert b_counts == {200: len(writes)}, f"B was refused while A drained its own bucket: {dict(b_counts)}"


def test_a_flash_sale_through_the_edge_500_buyers_from_50_addresses_sells_the_stock_and_refuses_nobody(app, settings):
    """500 buyers, ten behind each of 50 addresses (FLASH_ADDRESS_RATE: 20 attempts a second per address),
    each buying once at a random moment of four seconds, through the edge with the default limits: an
    address sends ten attempts at most in any second, a buyer one, so nobody is within reach of a limit and
    nobody may be refused (429). Accepted equals the stock, nothing oversold, one unit per buyer."""
    edge = settings.edge_url
    stock, per_address, spread_s = 200, 10, 4.0
    buyers = make_buyers(app, 500)
    addresses = [fresh_address() for _ in range(len(buyers) // per_address)]
    sale_id = make_sale(stock=stock)
    rng = random.Random(20)
    plan = sorted((rng.uniform(0, spread_s), c, addresses[i // per_address]) for i, (_, c) in enumerate(buyers))
    start = time.monotonic() + 0.5

    def attempt(entry: tuple[float, str, str]) -> tuple[str, int, str]:
        at, cookie, address = entry
        time.sleep(max(0.0, start + at - time.monotonic()))
        resp = buy(edge, cookie, sale_id, address=address)
        code = resp.json().get("error", {}).get("code", "") if resp.status_code != 202 else ""
        return address, resp.status_code, code

    with ThreadPoolExecutor(max_workers=48) as pool:
        answers = list(pool.map(attempt, plan))
    took = time.monotonic() - start
    counts = Counter(f"{status} {code}".strip() for _, status, code in answers)
    refused = Counter(address for address, status, _ in answers if status == 429)
    print(f"{len(buyers)} buyers from {len(set(addresses))} addresses in {took:.1f} s: {dict(counts)}")
    assert len(set(addresses)) >= 50
    assert not refused, f"buyers within their own limits refused (429) behind {len(refused)} addresses: {counts}"
    assert counts == {"202": stock, "409 sold_out": len(buyers) - stock}, counts
    wait_written(app, sale_id)
    rows, db_stock = orders_of(app, sale_id)
    confirmed = [r for r in rows if r.status == "confirmed"]
    assert len(confirmed) == stock and sum(r.quantity for r in confirmed) == stock, Counter(r.status for r in rows)
    assert len({r.user_id for r in confirmed}) == stock, "a buyer got more than the limit"
    assert db_stock == 0 and gate_stock(app, sale_id) == 0
