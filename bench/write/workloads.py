"""What the HTTP clients send (orders over a catalogue, orders on hot SKUs, bare rows) and
the measurements of OrderFlow and of the bare endpoint built from them."""

from __future__ import annotations

import asyncio
import json
import math
import random
import uuid
from dataclasses import replace
from typing import Any

import httpx2
import psycopg

from bench.write.http_load import Call, MakeCall, load
from bench.write.results import Plan, Result
from bench.write.servers import JWT_SECRET, Server, median_bound, running
from domain.inventory import InventoryItem
from infra.eventstore.event_store import open_event_store
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role

HTTP_CLIENTS = (1, 16)
HOT_SKUS = 3
SEED_BATCH = 5_000  # events per append while seeding
SKU_COUNT = 200
ON_HAND = 1_000_000  # the most one registration accepts; orders take a few units each


def order_lines(skus: list[str]) -> list[dict[str, Any]]:
    """1 to 3 distinct SKUs, 1 to 3 units each: spread over the catalogue, never out of stock."""
    chosen = random.sample(skus, k=random.randint(1, 3))
    return [{"sku": sku, "quantity": random.randint(1, 3)} for sku in chosen]


def place_order_calls(skus: list[str], clients: int) -> MakeCall:
    """A customer per client, each order with a fresh Idempotency-Key as real clients send."""
    tokens = [
        mint_token(JWT_SECRET, f"bench-customer-{i}", Role.CUSTOMER, 3600) for i in range(clients)
    ]

    def make(index: int) -> Call:
        headers = {
            "Authorization": f"Bearer {tokens[index]}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        return Call("/orders", json.dumps({"lines": order_lines(skus)}).encode(), headers)

    return make


def hot_order_calls(skus: list[str], clients: int) -> MakeCall:
    """Like place_order_calls, but every order takes 1-3 units of one of the hot SKUs."""
    spread = place_order_calls(skus, clients)

    def make(index: int) -> Call:
        call = spread(index)
        line = {"sku": random.choice(skus), "quantity": random.randint(1, 3)}
        return replace(call, body=json.dumps({"lines": [line]}).encode())

    return make


def insert_row_calls(skus: list[str]) -> MakeCall:
    """The same bodies as the orders, stored as they come."""

    def make(_: int) -> Call:
        body = json.dumps({"lines": order_lines(skus)}).encode()
        return Call("/rows", body, {"Content-Type": "application/json"})

    return make


def stock_catalogue(server: Server, prefix: str) -> list[str]:
    """A fresh catalogue per measurement, so each starts with the same short SKU streams."""
    skus = [f"{prefix}-{n:04d}" for n in range(SKU_COUNT)]
    token = mint_token(JWT_SECRET, "bench-operator", Role.OPERATOR, 3600)
    with httpx2.Client(base_url=server.base_url, timeout=30) as client:
        for sku in skus:
            response = client.post(
                "/inventory",
                json={"sku": sku, "name": sku, "unit_price_cents": 1299, "on_hand": ON_HAND},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
    return skus


def mean_stream_length(dsn: str, skus: list[str]) -> float:
    """Events per SKU aggregate: what a command would replay without cache or snapshots."""
    ids = [InventoryItem.create_id(sku) for sku in skus]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT avg(v)::float FROM (SELECT max(originator_version) AS v"
            " FROM orderflow_events WHERE originator_id = ANY(%s) GROUP BY originator_id) s",
            (ids,),
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else math.nan


def seed_hot_skus(dsn: str, events: int) -> list[str]:
    """3 SKUs whose streams hold `events` events each, appended through the library in
    big batches, and a snapshot of each at its last version (what the default interval
    would have left), so a fresh server process starts from it."""
    skus = [f"HOT-{n}" for n in range(HOT_SKUS)]
    settings = Settings(database_url=dsn, jwt_secret=JWT_SECRET, snapshot_interval_inventory=0)
    app = open_event_store(settings, snapshots=True)
    assert app.snapshots is not None
    try:
        for sku in skus:
            item = InventoryItem(sku=sku, name=sku, unit_price_cents=1299)
            while item.version < events:
                for _ in range(min(SEED_BATCH, events - item.version)):
                    item.receive(1)
                app.save(item)
            snapshot_class = getattr(type(item), "Snapshot", type(app).snapshot_class)
            assert snapshot_class is not None
            app.snapshots.put([snapshot_class.take(item)])
    finally:
        app.close()
    return skus


def measured(server: Server, calls: MakeCall, clients: int, plan: Plan, postmaster: int) -> Result:
    read_before = server.events_read()
    result = asyncio.run(load(server, calls, clients, plan, postmaster))
    read = median_bound(read_before, server.events_read())
    return replace(result, extra={**result.extra, "events_read_median_at_most": read})


def measure_orderflow(
    dsn: str, plan: Plan, postmaster: int, workers: int, hot: list[str]
) -> dict[str, dict[int, Result]]:
    spread, hottest = {}, {}
    with running("orderflow", dsn, workers) as server:
        for clients in HTTP_CLIENTS:
            skus = stock_catalogue(server, f"C{clients}W{workers}")
            result = measured(server, place_order_calls(skus, clients), clients, plan, postmaster)
            stream = round(mean_stream_length(dsn, skus), 1)
            spread[clients] = replace(
                result, extra={**result.extra, "sku_events_mean_at_end": stream}
            )
        clients = max(HTTP_CLIENTS)
        result = measured(server, hot_order_calls(hot, clients), clients, plan, postmaster)
        stream = round(mean_stream_length(dsn, hot), 1)
        hottest[clients] = replace(result, extra={**result.extra, "sku_events_mean_at_end": stream})
    return {f"orderflow/{workers}w": spread, f"hot/{workers}w": hottest}


def measure_bare(dsn: str, plan: Plan, postmaster: int, workers: int) -> dict[int, Result]:
    calls = insert_row_calls([f"B-{n:04d}" for n in range(SKU_COUNT)])
    with running("bare", dsn, workers) as server:
        return {
            clients: asyncio.run(load(server, calls, clients, plan, postmaster))
            for clients in HTTP_CLIENTS
        }
