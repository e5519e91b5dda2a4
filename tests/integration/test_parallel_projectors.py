"""Two projectors on one projection set, on PostgreSQL: neither waits for the other's
batch, and an event both hold (a rebalance redelivers it) is applied once."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import pytest

from commands.ports import CommandContext
from infra.bootstrap import WriteSide, read_store, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.ports import ReadStore
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, RegisterItem
from schemas.envelope import Envelope
from tests.commanding import placed as facts
from tests.folding import fold_and_compare

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="parallel", actor="test")


@pytest.fixture
def shop(postgres_settings: Settings) -> Iterator[WriteSide]:
    side = write_side(postgres_settings)
    for sku in ("A", "B"):
        side.bus.handle(RegisterItem(sku=sku, name=sku, unit_price_cents=5, on_hand=500), CONTEXT)
    for n in range(30):
        lines = (OrderLineRequest(sku="AB"[n % 2], quantity=1),)
        placed = facts(side.bus.handle(PlaceOrder(customer_id=f"c{n}", lines=lines), CONTEXT))
        if n % 3:
            pay = PayOrder(order_id=placed.order_id, amount_cents=5, payment_ref=f"p{n}")
            side.bus.handle(pay, CONTEXT)
    yield side
    side.close()


@pytest.fixture
def store(postgres_settings: Settings) -> Iterator[ReadStore]:
    opened = read_store(postgres_settings)
    SqlProjector(opened, SQL_READ_MODELS).setup()
    yield opened
    opened.close()


def everything(side: WriteSide) -> list[Envelope]:
    return [e for batch in EventLog(side.app).iterate(0) for e in batch]


def test_a_second_projector_applies_while_the_first_holds_its_batch(
    shop: WriteSide, store: ReadStore
) -> None:
    events = everything(shop)
    ids = sorted({e.aggregate_id for e in events}, key=str)
    mine = set(ids[::2])  # Kafka partitions by aggregate: each process has its own
    first, second = SqlProjector(store, SQL_READ_MODELS), SqlProjector(store, SQL_READ_MODELS)
    finished = threading.Event()
    with store.transaction() as tx:
        first.apply_in(tx, [e for e in events if e.aggregate_id in mine])  # not committed
        theirs = [e for e in events if e.aggregate_id not in mine]

        def apply_theirs() -> None:
            second.apply(theirs)
            finished.set()

        worker = threading.Thread(target=apply_theirs)
        worker.start()
        # before the fix, the second waited here for the first's lock on the state row
        assert finished.wait(timeout=30), "the second projector waited for the first"
    worker.join()
    first.compact()
    assert set(first.positions().values()) == {events[-1].position}
    fold_and_compare(store, EventLog(shop.app))


def test_events_both_hold_are_applied_once(shop: WriteSide, store: ReadStore) -> None:
    events = everything(shop)
    handled = sum(
        1 for p in SQL_READ_MODELS for e in events if e.type in p.handlers
    )  # by hand: the set
    applied: list[int] = []

    def project(seed: int) -> None:
        runner, rnd = SqlProjector(store, SQL_READ_MODELS), random.Random(seed)
        mine = list(events)
        for _ in range(5):  # stretches delivered twice, as after a crash
            start = rnd.randrange(len(mine))
            mine[start:start] = mine[start : start + 15]
        for n in range(0, len(mine), 7):
            applied.append(runner.apply(mine[n : n + 7]))

    workers = [threading.Thread(target=project, args=(seed,)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(applied) == handled
    fold_and_compare(store, EventLog(shop.app))
