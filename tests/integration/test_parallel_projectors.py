"""Two projectors on one projection set, on PostgreSQL: neither waits for the other's
batch, and an event both hold (a rebalance redelivers it) is applied once, whether they
claim by set (one row per position for the set) or, beside an overlapping set, per read
model."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator, Sequence

import pytest

from commands.ports import CommandContext
from infra.bootstrap import WriteSide, read_store, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections import claim_sets
from projections.ports import ReadStore
from projections.read_model import SqlReadModel
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector, load_watermark
from projections.verify import checked_rebuild_all
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
    SqlProjector(opened, SQL_READ_MODELS).setup(claim_set=True)  # as `orderflow project`
    yield opened
    opened.close()


class Rollback(Exception):
    """Leaves what a test transaction did uncommitted."""


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


def deliveries(events: list[Envelope], seed: int) -> list[Envelope]:
    """Every event, with stretches delivered twice, as after a crash."""
    mine, rnd = list(events), random.Random(seed)
    for _ in range(5):
        start = rnd.randrange(len(mine))
        mine[start:start] = mine[start : start + 15]
    return mine


def handled_by(projections: Sequence[SqlReadModel], events: list[Envelope]) -> int:
    return sum(1 for p in projections for e in events if e.type in p.handlers)  # by hand


def test_events_both_hold_are_applied_once(shop: WriteSide, store: ReadStore) -> None:
    events = everything(shop)
    applied: list[int] = []

    def project(seed: int) -> None:
        runner, mine = SqlProjector(store, SQL_READ_MODELS), deliveries(events, seed)
        for n in range(0, len(mine), 7):
            applied.append(runner.apply(mine[n : n + 7]))

    workers = [threading.Thread(target=project, args=(seed,)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(applied) == handled_by(SQL_READ_MODELS, events)
    fold_and_compare(store, EventLog(shop.app))


def test_overlapping_sets_apply_each_event_once(shop: WriteSide, store: ReadStore) -> None:
    """The whole set claims by set for a while (its rows left uncompacted), then a
    process running two of its read models registers beside it: from then on both claim
    per read model, so the part's batch waits for the whole's open batch and finds its
    events taken, and what the set claimed before still counts."""
    events = everything(shop)
    whole = SqlProjector(store, SQL_READ_MODELS)
    with store.transaction() as tx:
        early = whole.apply_in(tx, events[: len(events) // 2])  # by set, not compacted
    with store.read() as tx:
        by_set = tx.one(
            "SELECT count(*) AS n FROM projection_pending WHERE name = %s",
            (claim_sets.set_key([p.name for p in SQL_READ_MODELS]),),
        )
    assert by_set is not None
    assert by_set["n"] == len(events) // 2
    part = SqlProjector(store, SQL_READ_MODELS[:2])
    part.setup(claim_set=True)
    applied: list[int] = []
    finished = threading.Event()

    def apply_part() -> None:
        applied.append(part.apply(deliveries(events, 2)))
        finished.set()

    with store.transaction() as tx:
        late = whole.apply_in(tx, deliveries(events, 1))
        worker = threading.Thread(target=apply_part)
        worker.start()
        # the part's claims queue on the whole's: applying now would apply twice
        assert not finished.wait(timeout=1)
    worker.join()
    whole.compact()
    assert early + late + sum(applied) == handled_by(SQL_READ_MODELS, events)
    assert set(whole.positions().values()) == {events[-1].position}
    fold_and_compare(store, EventLog(shop.app))


def applied_outside(store: ReadStore, projection: SqlReadModel, events: list[Envelope]) -> int:
    """What a verify does: one read model, its state row locked, then rolled back."""
    counted: list[int] = []
    with contextlib.suppress(Rollback), store.transaction() as tx:
        load_watermark(tx, projection.name)
        counted.append(SqlProjector(store, [projection]).apply_in(tx, events))
        raise Rollback
    return counted[0]


def test_a_verify_and_a_rebuild_beside_a_set_apply_nothing_twice(
    shop: WriteSide, store: ReadStore
) -> None:
    """A verify brings the live tables to the log's head in its own transaction, one read
    model at a time and outside any set: the events the set claimed, committed but not
    compacted yet, are applied already and must not be applied again (several handlers
    write absolute values, so the tables alone would not show it: the count does)."""
    events = everything(shop)
    live = SqlProjector(store, SQL_READ_MODELS)
    with store.transaction() as tx:
        live.apply_in(tx, events)  # by set, the watermarks left behind
    assert [applied_outside(store, p, events) for p in SQL_READ_MODELS] == [0] * 5
    checked = checked_rebuild_all(SQL_READ_MODELS, store, EventLog(shop.app), swap=False)
    assert [c.comparison.equal for c in checked] == [True] * len(SQL_READ_MODELS)
    checked = checked_rebuild_all(SQL_READ_MODELS, store, EventLog(shop.app), swap=True)
    assert [c.swapped for c in checked] == [True] * len(SQL_READ_MODELS)
    assert live.apply(events) == 0  # a redelivery of everything, after the swap
    assert set(live.positions().values()) == {events[-1].position}
    fold_and_compare(store, EventLog(shop.app))
