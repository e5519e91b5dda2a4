"""A rebuild whose pass is folded by two processes (projections/split_fold.py) gives what
one process gives, row for row and dead letter for dead letter, and what the aggregates
loaded from the event store say."""

from __future__ import annotations

import os
import time
from uuid import UUID

import pytest

from commands.ports import CommandContext
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from infra.eventstore.log_shares import CUT
from infra.settings import Settings
from projections import split_fold
from projections.orders import orders
from projections.ports import Row
from projections.rebuild import rebuild_all
from projections.registry import SQL_READ_MODELS
from projections.rows import Rows
from projections.split_fold import HelperFailed, splittable
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, ShipOrder
from schemas.envelope import Envelope
from tests.commanding import placed
from tests.folding import rows
from tests.integration.test_rebuild import workload
from tests.oracle import assert_read_models_match_aggregates

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="split-rebuild", actor="test")


@pytest.fixture
def settings(postgres_settings: Settings) -> Settings:
    """PostgreSQL only: the split needs the log's raw rows."""
    return postgres_settings


def tables(reads: ReadSide) -> dict[str, list[Row]]:
    return {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables}


def letters(reads: ReadSide) -> list[Row]:
    with reads.store.read() as tx:
        return tx.all(
            "SELECT projection, position, aggregate_id, event_type, envelope, error, attempts, "
            "status FROM dead_letters ORDER BY projection, position"
        )


def rebuilt(
    side: WriteSide, reads: ReadSide, split: bool
) -> tuple[dict[str, list[Row]], list[Row]]:
    reports = rebuild_all(SQL_READ_MODELS, reads.store, EventLog(side.app), batch=16, split=split)
    assert {r.position for r in reports} == {EventLog(side.app).head()}
    return tables(reads), letters(reads)


def test_two_processes_rebuild_what_one_does_and_what_the_aggregates_say(
    side: WriteSide, reads: ReadSide
) -> None:
    workload(side, orders=60)
    assert splittable(EventLog(side.app), reads.store)  # the split path is the one taken

    alone = rebuilt(side, reads, split=False)
    shared = rebuilt(side, reads, split=True)

    assert shared == alone
    assert sum(len(t) for t in shared[0].values()) > 200
    assert_read_models_match_aggregates(reads.store, side.app)


def shipped_order(side: WriteSide) -> UUID:
    lines = (OrderLineRequest(sku="B", quantity=1),)
    facts = placed(side.bus.handle(PlaceOrder(customer_id="v", lines=lines), CONTEXT))
    paying = PayOrder(order_id=facts.order_id, amount_cents=facts.total_cents, payment_ref="v")
    side.bus.handle(paying, CONTEXT)
    shipping = ShipOrder(order_id=facts.order_id, carrier="DHL", tracking_number="V")
    side.bus.handle(shipping, CONTEXT)
    return facts.order_id


def test_two_processes_park_what_one_parks(
    side: WriteSide, reads: ReadSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    workload(side, orders=30)
    victims: list[UUID] = []
    while {v >= CUT for v in victims} != {False, True}:  # one in each share (split at the cut)
        victims.append(shipped_order(side))
    paid = orders.handlers["order.paid"]

    def poisoned(e: Envelope, db: Rows) -> None:
        if e.aggregate_id in victims:
            raise RuntimeError("the projection cannot handle this payment")
        paid(e, db)

    monkeypatch.setitem(orders.handlers, "order.paid", poisoned)  # forked with the helper

    alone = rebuilt(side, reads, split=False)
    shared = rebuilt(side, reads, split=True)

    assert shared == alone
    parked = {(r["status"], r["aggregate_id"]) for r in shared[1]}
    assert parked == {(s, str(v)) for v in victims for s in ("failed", "held")}


def test_two_shares_writing_one_key_fail_the_rebuild_instead_of_waiting_on_each_other(
    side: WriteSide, reads: ReadSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler that breaks the rule (a row keyed by something other than its event's
    aggregate) gives both processes one key to load. Here this process loads it first
    (the helper folds slowly) and waits for the helper's answer, while the helper's load
    waits for this process's transaction: the helper gives up at its lock timeout and the
    rebuild fails as a whole, the live tables as they were."""
    workload(side, orders=12)
    rebuilt(side, reads, split=False)
    live = tables(reads)
    parent = os.getpid()
    paid = orders.handlers["order.paid"]

    def colliding(e: Envelope, db: Rows) -> None:
        paid(e, db)
        row = {"order_id": "every-share", "sku": "X", "quantity": 1, "unit_price_cents": 1}
        db.put("order_lines", row)
        if os.getpid() != parent:
            time.sleep(0.2)  # the helper's fold ends well after this process's

    monkeypatch.setitem(orders.handlers, "order.paid", colliding)  # forked with the helper
    monkeypatch.setattr(split_fold, "LOAD_LOCK_TIMEOUT", "1s")
    began = time.monotonic()

    with pytest.raises(HelperFailed, match="lock timeout"):
        rebuild_all(SQL_READ_MODELS, reads.store, EventLog(side.app), batch=16)

    assert time.monotonic() - began < 30
    assert tables(reads) == live


def test_an_empty_log_is_rebuilt_by_two_processes_into_empty_tables(
    side: WriteSide, reads: ReadSide
) -> None:
    assert EventLog(side.app).head() == 0
    assert splittable(EventLog(side.app), reads.store)

    reports = rebuild_all(SQL_READ_MODELS, reads.store, EventLog(side.app), batch=16)

    assert {(r.position, r.events) for r in reports} == {(0, 0)}
    assert all(not table for table in tables(reads).values())
    assert letters(reads) == []
