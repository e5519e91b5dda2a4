"""`orderflow write-api --workers 2` on a real PostgreSQL: two processes, each with its own
group-commit appender and aggregate cache, never sell more than there is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from domain.inventory import InventoryItem
from infra.eventstore.event_store import open_event_store
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role
from tests.harness.ports import free_port

pytestmark = pytest.mark.postgres

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
STARTUP_BUDGET_S = 60


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@contextmanager
def write_api(settings: Settings, workers: int, **more_env: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env |= {
        "ORDERFLOW_DATABASE_URL": str(settings.database_url),
        "ORDERFLOW_JWT_SECRET": settings.token_secret,
        "ORDERFLOW_PAYMENT_WEBHOOK_SECRET": settings.webhook_secret,
        "ORDERFLOW_WRITE_PORT": str(port),
        "ORDERFLOW_LOG_LEVEL": "WARNING",
        **more_env,
    }
    process = subprocess.Popen(
        [ORDERFLOW, "write-api", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while True:
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if process.poll() is not None or time.monotonic() - started > STARTUP_BUDGET_S:
                process.kill()
                pytest.fail(f"write-api did not start:\n{process.communicate()[1]}")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("routed_after", ["3", "0"])  # the default; every SKU routed (ADR 0028)
def test_two_hundred_orders_for_fifty_through_two_workers_sell_exactly_fifty(
    postgres_settings: Settings, routed_after: str
) -> None:
    secret = postgres_settings.token_secret
    operator = {"Authorization": f"Bearer {mint_token(secret, 'ops', Role.OPERATOR, 600)}"}
    routing = {"ORDERFLOW_WRITE_ROUTING_AFTER": routed_after}
    with write_api(postgres_settings, workers=2, **routing) as (base, pid):
        assert len(_children(pid)) >= 2  # the supervisor's two server processes
        registered = httpx2.post(
            f"{base}/inventory",
            json={"sku": "HOT", "name": "hot", "unit_price_cents": 100, "on_hand": 50},
            headers=operator,
            timeout=30,
        )
        assert registered.status_code == 201
        start = threading.Barrier(200)

        def place(n: int) -> httpx2.Response:
            token = mint_token(secret, f"customer-{n}", Role.CUSTOMER, 600)
            with httpx2.Client(base_url=base, timeout=120) as client:
                start.wait()
                return client.post(
                    "/orders",
                    json={"lines": [{"sku": "HOT", "quantity": 1}]},
                    headers={"Authorization": f"Bearer {token}"},
                )

        with ThreadPoolExecutor(max_workers=200) as pool:
            responses = list(pool.map(place, range(200)))
        if routed_after == "0":  # whichever worker answers, it forwarded or received orders
            assert routed(httpx2.get(f"{base}/metrics", timeout=30).text) > 0

    outcomes = Counter(
        (r.status_code, r.json().get("type", "").rsplit("/", 1)[-1]) for r in responses
    )
    assert outcomes == {(201, ""): 50, (409, "insufficient-stock"): 150}
    store = open_event_store(postgres_settings.model_copy(update={"aggregate_cache_size": 0}))
    try:
        item: InventoryItem = store.repository.get(InventoryItem.create_id("HOT"))
        assert (item.on_hand, item.reserved, len(item.reservations)) == (50, 50, 50)
        created = [
            n
            for n in store.recorder.select_notifications(start=1, limit=10_000)
            if n.topic.endswith("order.created")
        ]
        assert len(created) == 50
        placed = {r.json()["order_id"] for r in responses if r.status_code == 201}
        assert placed == {str(n.originator_id) for n in created}
    finally:
        store.close()


def routed(metrics: str) -> float:
    """Commands this worker forwarded to the owner of their SKU, or received as its owner."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("orderflow_commands_routed_total{")
        and ('way="forwarded"' in line or 'way="received"' in line)
    )


def test_with_one_worker_killed_the_other_answers_every_order_right(
    postgres_settings: Settings,
) -> None:
    """Every SKU routed, one SKU owned by each slot: whichever worker dies, the other
    gets orders for the dead one's SKU and decides them itself (or its restarted
    successor does, once it holds the slot again)."""
    secret = postgres_settings.token_secret
    operator = {"Authorization": f"Bearer {mint_token(secret, 'ops', Role.OPERATOR, 600)}"}
    skus = [
        next(s for n in range(100) if InventoryItem.create_id(s := f"K{slot}-{n}").int % 2 == slot)
        for slot in (0, 1)
    ]
    with write_api(postgres_settings, workers=2, ORDERFLOW_WRITE_ROUTING_AFTER="0") as (base, pid):
        for sku in skus:
            registered = httpx2.post(
                f"{base}/inventory",
                json={"sku": sku, "name": sku, "unit_price_cents": 100, "on_hand": 20},
                headers=operator,
                timeout=30,
            )
            assert registered.status_code == 201
        workers = [
            c for c in _children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)

        def place(n: int) -> httpx2.Response:
            token = mint_token(secret, f"customer-{n}", Role.CUSTOMER, 600)
            return httpx2.post(
                f"{base}/orders",
                json={"lines": [{"sku": skus[n % 2], "quantity": 1}]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(place, range(60)))

    outcomes = Counter((skus[n % 2], r.status_code) for n, r in enumerate(responses))
    assert outcomes == {
        (sku, status): 20 if status == 201 else 10 for sku in skus for status in (201, 409)
    }
    store = open_event_store(postgres_settings.model_copy(update={"aggregate_cache_size": 0}))
    try:
        for sku in skus:
            item: InventoryItem = store.repository.get(InventoryItem.create_id(sku))
            assert (item.on_hand, item.reserved, len(item.reservations)) == (20, 20, 20)
    finally:
        store.close()
