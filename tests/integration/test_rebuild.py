"""A rebuilt projection equals the live one, row for row, and reads go on meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi.testclient import TestClient

from commands.ports import CommandContext
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from projections.feed import LogFeed
from projections.rebuild import rebuild
from projections.registry import SQL_READ_MODELS
from schemas.auth import Role
from schemas.commands import (
    CancelOrder,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ShipOrder,
)
from tests.commanding import placed as facts
from tests.folding import fold_and_compare, rows
from tests.oracle import assert_read_models_match_aggregates

CONTEXT = CommandContext(correlation_id="rebuild-test", actor="test")
Auth = Callable[..., dict[str, str]]


def workload(side: WriteSide, orders: int) -> None:
    """A mix of every order fate, on a few SKUs."""
    handle = side.bus.handle
    for sku in ("A", "B", "C"):
        handle(RegisterItem(sku=sku, name=sku, unit_price_cents=250, on_hand=10_000), CONTEXT)
    for n in range(orders):
        lines = (
            OrderLineRequest(sku="ABC"[n % 3], quantity=1 + n % 4),
            OrderLineRequest(sku="ABC"[(n + 1) % 3], quantity=1),
        )
        placed = facts(handle(PlaceOrder(customer_id=f"c{n % 5}", lines=lines), CONTEXT))
        order_id, total = placed.order_id, placed.total_cents
        if n % 4 in (1, 2):
            handle(PayOrder(order_id=order_id, amount_cents=total, payment_ref=f"p{n}"), CONTEXT)
        if n % 4 == 2:
            handle(ShipOrder(order_id=order_id, carrier="DHL", tracking_number=f"T{n}"), CONTEXT)
        if n % 4 == 3:
            handle(CancelOrder(order_id=order_id, reason="test"), CONTEXT)
        if n % 10 == 0:
            handle(ReceiveStock(sku="A", quantity=5), CONTEXT)


def test_a_rebuilt_projection_equals_the_live_one_row_for_row(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    workload(side, orders=40)
    feed.catch_up()
    live = {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables}
    positions = reads.runner.positions()
    for projection in SQL_READ_MODELS:
        report = rebuild(projection, reads.store, EventLog(side.app))
        assert report.position == positions[projection.name]
    assert {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables} == live
    assert reads.runner.positions() == positions
    assert fold_and_compare(reads.store, EventLog(side.app))["orders"] == 40
    assert_read_models_match_aggregates(reads.store, side.app)


def test_the_live_projection_goes_on_after_a_swap_without_applying_twice(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    workload(side, orders=10)
    feed.catch_up()
    for projection in SQL_READ_MODELS:
        rebuild(projection, reads.store, EventLog(side.app))
    for _ in range(5):
        side.bus.handle(ReceiveStock(sku="B", quantity=1), CONTEXT)
    feed.catch_up()
    assert_read_models_match_aggregates(reads.store, side.app)
    before = {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables}
    redelivered = [reads.runner.apply(b) for b in EventLog(side.app).iterate(0, batch=50)]
    assert len(redelivered) > 1
    assert sum(redelivered) == 0  # a redelivery of everything...
    assert {t.name: rows(reads.store, t.name) for p in SQL_READ_MODELS for t in p.tables} == before
    assert_read_models_match_aggregates(reads.store, side.app)  # ...changes nothing
    fold_and_compare(reads.store, EventLog(side.app))


def test_a_rebuild_picks_up_events_appended_while_it_ran(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    workload(side, orders=20)
    feed.catch_up()
    appended = 0

    def append_meanwhile(done: int, head: int) -> None:
        nonlocal appended
        if appended < 3:
            side.bus.handle(ReceiveStock(sku="C", quantity=1), CONTEXT)
            appended += 1

    # batches small enough for three of them in this process's share of a split pass
    report = rebuild(
        SQL_READ_MODELS[1], reads.store, EventLog(side.app), progress=append_meanwhile, batch=20
    )
    assert appended == 3
    assert report.position == EventLog(side.app).head()
    feed.catch_up()
    fold_and_compare(reads.store, EventLog(side.app))
    assert_read_models_match_aggregates(reads.store, side.app)


def test_reads_keep_answering_during_a_rebuild(
    side: WriteSide,
    reads: ReadSide,
    feed: LogFeed,
    read_client: TestClient,
    auth: Auth,
) -> None:
    workload(side, orders=150)
    feed.catch_up()
    answers: list[int] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set():
            for path in ("/orders?limit=20", "/inventory/A"):
                answers.append(read_client.get(path, headers=auth(Role.ADMIN)).status_code)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for projection in SQL_READ_MODELS:
            rebuild(projection, reads.store, EventLog(side.app), batch=100)
    finally:
        stop.set()
        reader.join()
    assert len(answers) > 10
    assert set(answers) == {200}
