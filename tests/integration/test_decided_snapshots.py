"""Snapshots after a group commit's append (infra/eventstore/decided_snapshots.py): taken
at the intervals, from the aggregate in memory when the event at the interval ends the
append, by the library's load otherwise. The oracle for their state is the aggregate
replayed from its events up to the snapshot's version, by a store with no snapshots and
no cache."""

from __future__ import annotations

from typing import Any, cast

from eventsourcing.domain import Snapshot
from pydantic_core import to_jsonable_python

from commands.bus import OneAtATime
from commands.handlers import HANDLERS
from commands.ports import Answer, CommandContext, Decision, UnitOfWork
from domain.inventory import InventoryItem
from infra.eventstore.event_store import OrderFlowApplication, events_decoded, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from infra.settings import Settings
from schemas.commands import Command, OrderLineRequest, PlaceOrder, ReceiveStock, RegisterItem

CONTEXT = CommandContext(correlation_id="decided-snapshots", actor="test")
ITEM = InventoryItem.create_id("A")


def appender(app: OrderFlowApplication) -> GroupAppender:
    keys = EventStoreIdempotency(app)
    return GroupAppender(app, OneAtATime(lambda: EventStoreUnitOfWork(app), keys), keys)


def decision(command: Command) -> Decision[Answer]:
    def decide(uow: UnitOfWork) -> Answer:
        return Answer(201, to_jsonable_python(HANDLERS[type(command)](command, uow)))

    return Decision(decide, CONTEXT)


def receipts(count: int) -> list[Decision[Answer]]:
    return [decision(ReceiveStock(sku="A", quantity=1)) for _ in range(count)]


def orders(count: int) -> list[Decision[Answer]]:
    line = OrderLineRequest(sku="A", quantity=1)
    return [decision(PlaceOrder(customer_id=f"c{n}", lines=(line,))) for n in range(count)]


def state(aggregate: Any) -> dict[str, Any]:
    return dict(vars(aggregate))


def test_snapshots_at_the_intervals_hold_the_state_at_their_versions(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings.model_copy(update={"snapshot_interval_inventory": 5})
    app = open_event_store(settings)
    group = appender(app)
    try:
        group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=100))])
        group.run_batch(receipts(4))  # versions 2-5: version 5 ends the append
        read = events_decoded()
        group.run_batch(receipts(7))  # 6-12: version 10 in the middle, loaded
        assert events_decoded() - read > 0
        read = events_decoded()
        group.run_batch(orders(3))  # 13-15, reservations: version 15 ends the append
        assert events_decoded() - read == 0  # from memory: nothing read
        assert app.snapshots is not None
        snapshots = list(app.snapshots.get(ITEM))
    finally:
        group.close()
        app.close()

    assert [s.originator_version for s in snapshots] == [5, 10, 15]
    plain = open_event_store(
        settings.model_copy(update={"snapshot_interval_inventory": 0, "aggregate_cache_size": 0})
    )
    try:
        for snapshot in snapshots:
            replayed: InventoryItem = plain.repository.get(
                ITEM, version=snapshot.originator_version
            )
            restored = cast(Snapshot, snapshot).mutate(None)
            assert state(restored) == state(replayed)
        assert len(plain.repository.get(ITEM).reservations) == 3
    finally:
        plain.close()
