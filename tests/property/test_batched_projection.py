"""The batched path (rows folded in memory, bulk writes, bisection on a refused write)
gives the same read models and dead letters as applying one event at a time in log order,
and the orders and stock it shows are those of the aggregates in the event store."""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.ports import CommandContext
from domain.errors import DomainError
from domain.inventory import InventoryItem
from domain.order import Order
from infra.bootstrap import write_side
from infra.eventstore.event_log import EventLog
from infra.readstore.store import PostgresReadStore, SQLiteReadStore
from infra.settings import Settings
from projections.orders import orders
from projections.ports import ReadStore, Row
from projections.registry import SQL_READ_MODELS
from projections.rows import Rows
from projections.sql_projector import SqlProjector
from schemas.commands import (
    AdjustStock,
    CancelOrder,
    ChangePrice,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    RegisterItem,
    ShipOrder,
)
from schemas.envelope import Envelope
from tests.commanding import placed as facts
from tests.harness.postgres import PostgresServer
from tests.property.test_projection_delivery import interleaving

SKUS = ("A", "B", "C", "D")


class History:
    """Events of a shop, and every aggregate as the event store loads it afterwards."""

    def __init__(self) -> None:
        side = write_side(Settings(data_dir=Path(tempfile.mkdtemp()), jwt_secret="b" * 32))
        context = CommandContext(correlation_id="batched", actor="test")
        rnd = random.Random(5)
        for sku in SKUS:
            side.bus.handle(
                RegisterItem(sku=sku, name=sku, unit_price_cents=9, on_hand=40), context
            )
        placed: list[UUID] = []
        for _ in range(60):
            step = rnd.random()
            with contextlib.suppress(DomainError):
                if step < 0.45 or not placed:
                    lines = tuple(
                        OrderLineRequest(sku=s, quantity=rnd.randint(1, 3))
                        for s in rnd.sample(SKUS, 2)
                    )
                    sent = side.bus.handle(PlaceOrder(customer_id="c", lines=lines), context)
                    placed.append(facts(sent).order_id)
                elif step < 0.7:
                    order: Order = side.app.repository.get(rnd.choice(placed))
                    pay = PayOrder(
                        order_id=order.id, amount_cents=order.total_cents, payment_ref="p"
                    )
                    side.bus.handle(pay, context)
                elif step < 0.8:
                    ship = ShipOrder(
                        order_id=rnd.choice(placed), carrier="DHL", tracking_number="T"
                    )
                    side.bus.handle(ship, context)
                elif step < 0.9:
                    side.bus.handle(CancelOrder(order_id=rnd.choice(placed), reason="r"), context)
                elif step < 0.95:
                    side.bus.handle(AdjustStock(sku=rnd.choice(SKUS), delta=2, reason="c"), context)
                else:
                    side.bus.handle(ChangePrice(sku=rnd.choice(SKUS), unit_price_cents=11), context)
        self.events = [e for batch in EventLog(side.app).iterate(0) for e in batch]
        ids = {e.aggregate_id for e in self.events}
        self.aggregates: dict[UUID, Any] = {i: side.app.repository.get(i) for i in ids}
        side.close()


HISTORY: list[History] = []


def history() -> History:
    if not HISTORY:
        HISTORY.append(History())
    return HISTORY[0]


@contextlib.contextmanager
def refused_payments(victims: set[str]) -> Iterator[None]:
    """A payment of a victim leaves a row the database refuses (no customer, which no
    later event sets again): a failure only the bulk write finds, which the batch must
    bisect down to that event. (The database checks each batch's final rows: a refused
    state that a later event of the same batch repairs is never seen.)"""
    original = orders.handlers["order.paid"]

    def poisoned(e: Envelope, db: Rows) -> None:
        original(e, db)
        if str(e.aggregate_id) in victims:
            db.update("orders", str(e.aggregate_id), customer_id=None)

    orders.handlers["order.paid"] = poisoned
    try:
        yield
    finally:
        orders.handlers["order.paid"] = original


def snapshot(store: ReadStore) -> dict[str, list[Row]]:
    tables = [t.name for p in SQL_READ_MODELS for t in p.tables]
    with store.read() as tx:
        found = {t: tx.all(f"SELECT * FROM {t}") for t in tables}
        found["dead_letters"] = tx.all(
            "SELECT projection, position, aggregate_id, status FROM dead_letters"
        )
    return {
        t: sorted(rows, key=lambda r: [str(v) for v in r.values()]) for t, rows in found.items()
    }


def project(directory: str, name: str, batches: list[list[Envelope]]) -> dict[str, list[Row]]:
    return project_into(SQLiteReadStore(Path(directory) / f"{name}.sqlite"), batches)


def project_into(store: ReadStore, batches: list[list[Envelope]]) -> dict[str, list[Row]]:
    runner = SqlProjector(store, SQL_READ_MODELS)
    runner.setup()
    for batch in batches:
        runner.apply(batch)
    found = snapshot(store)
    store.close()
    return found


def expected_from_aggregates(aggregates: dict[UUID, Any], victims: set[str]) -> dict[str, Any]:
    """Independent of every handler: what the domain says each order and SKU is."""
    orders_by_id = {
        str(a.id): (a.status.value, a.total_cents, a.version)
        for a in aggregates.values()
        if isinstance(a, Order) and str(a.id) not in victims
    }
    stock = {
        a.sku: (a.on_hand, a.reserved, a.available, a.unit_price_cents)
        for a in aggregates.values()
        if isinstance(a, InventoryItem)
    }
    return {"orders": orders_by_id, "stock": stock}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    batch=st.integers(2, 80),
    redeliveries=st.integers(0, 10),
    victims=st.integers(0, 3),
)
def test_batches_give_what_one_event_at_a_time_gives(
    seed: int, batch: int, redeliveries: int, victims: int
) -> None:
    rnd = random.Random(seed)
    shop = history()
    paid = sorted({str(e.aggregate_id) for e in shop.events if e.type == "order.paid"})
    poisoned = set(rnd.sample(paid, min(victims, len(paid))))
    delivered = interleaving(shop.events, rnd)
    for _ in range(redeliveries):
        start = rnd.randrange(len(delivered))
        delivered[start:start] = delivered[start : start + rnd.randint(1, 30)]
    with tempfile.TemporaryDirectory() as directory, refused_payments(poisoned):
        batched = project(
            directory,
            "batched",
            [delivered[n : n + batch] for n in range(0, len(delivered), batch)],
        )
        one_by_one = project(directory, "single", [[e] for e in shop.events])
    assert batched == one_by_one
    assert_shows_the_aggregates(batched, shop, poisoned)


@pytest.mark.postgres
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), batch=st.integers(2, 400), victims=st.integers(0, 3))
def test_on_postgresql_a_refused_batch_is_applied_again_one_read_model_at_a_time(
    postgres_server: PostgresServer, seed: int, batch: int, victims: int
) -> None:
    """On PostgreSQL a batch goes to all read models in one pipeline (batch.apply_together);
    a refusal there undoes it all and the read models take it one at a time, bisecting."""
    rnd = random.Random(seed)
    shop = history()
    paid = sorted({str(e.aggregate_id) for e in shop.events if e.type == "order.paid"})
    poisoned = set(rnd.sample(paid, min(victims, len(paid))))
    delivered = interleaving(shop.events, rnd)
    name = f"b_{uuid4().hex[:12]}"
    store = PostgresReadStore(postgres_server.create_database(name))
    try:
        with refused_payments(poisoned):
            batched = project_into(
                store, [delivered[n : n + batch] for n in range(0, len(delivered), batch)]
            )
            with tempfile.TemporaryDirectory() as directory:  # SQLite: no pipeline
                one_by_one = project(directory, "single", [[e] for e in shop.events])
    finally:
        postgres_server.drop_database(name)
    assert_shows_the_aggregates(batched, shop, poisoned)
    assert batched["dead_letters"] == one_by_one["dead_letters"]  # the same events parked


def assert_shows_the_aggregates(
    batched: dict[str, list[Row]], shop: History, poisoned: set[str]
) -> None:
    expected = expected_from_aggregates(shop.aggregates, poisoned)
    shown = {
        r["order_id"]: (r["status"], r["total_cents"], r["version"])
        for r in batched["orders"]
        if r["order_id"] not in poisoned
    }
    assert shown == expected["orders"]
    levels = {
        r["sku"]: (r["on_hand"], r["reserved"], r["available"], r["unit_price_cents"])
        for r in batched["inventory_levels"]
    }
    assert levels == expected["stock"]
    parked = {(r["aggregate_id"], r["status"]) for r in batched["dead_letters"]}
    assert {a for a, status in parked if status == "failed"} == poisoned
