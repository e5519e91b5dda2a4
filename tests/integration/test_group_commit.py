"""The group appender on real PostgreSQL: a refused or conflicting command fails alone,
and what a command reads does not grow with its aggregates' histories."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from commands.bus import OneAtATime
from commands.handlers import HANDLERS
from commands.ports import (
    Answer,
    CommandContext,
    Decision,
    IdempotencyClaim,
    StoredAnswer,
    UnitOfWork,
)
from domain.errors import InsufficientStock
from domain.inventory import InventoryItem
from infra.eventstore import log_follower
from infra.eventstore.event_store import OrderFlowApplication, events_decoded, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from infra.settings import Settings
from schemas.commands import Command, OrderLineRequest, PlaceOrder, ReceiveStock, RegisterItem

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="group", actor="test")


@pytest.fixture
def store(postgres_settings: Settings) -> Iterator[OrderFlowApplication]:
    app = open_event_store(postgres_settings)
    yield app
    app.close()


def appender(app: OrderFlowApplication) -> GroupAppender:
    keys = EventStoreIdempotency(app)
    return GroupAppender(app, OneAtATime(lambda: EventStoreUnitOfWork(app), keys), keys)


def decision(command: Command, key: str | None = None) -> Decision[Answer]:
    def decide(uow: UnitOfWork) -> Answer:
        return Answer(201, to_jsonable_python(HANDLERS[type(command)](command, uow)))

    claim = IdempotencyClaim("tester", key, "fp") if key else None
    return Decision(decide, CONTEXT, claim)


def order(*lines: tuple[str, int]) -> PlaceOrder:
    return PlaceOrder(
        customer_id="c", lines=tuple(OrderLineRequest(sku=s, quantity=q) for s, q in lines)
    )


def item(app: OrderFlowApplication, sku: str) -> InventoryItem:
    fresh = OrderFlowApplication({**app.env, "AGGREGATE_CACHE_MAXSIZE": ""})
    try:
        found: InventoryItem = fresh.repository.get(InventoryItem.create_id(sku))
        return found
    finally:
        fresh.close()


def head(app: OrderFlowApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_a_refused_command_in_a_batch_appends_nothing_and_the_others_commit(
    store: OrderFlowApplication,
) -> None:
    group = appender(store)
    group.run_batch(
        [
            decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=10)),
            decision(RegisterItem(sku="B", name="b", unit_price_cents=1, on_hand=1)),
        ]
    )
    before = head(store)
    outcomes = group.run_batch(
        [
            decision(order(("A", 2))),
            decision(order(("A", 3), ("B", 5))),  # A is reserved in memory before B refuses
            decision(order(("A", 1))),
        ]
    )
    group.close()
    assert isinstance(outcomes[1], InsufficientStock)
    # each accepted order: order created, stock reserved, order marked reserved
    assert head(store) - before == 6
    a, b = item(store, "A"), item(store, "B")
    assert (a.on_hand, a.reserved, b.on_hand, b.reserved) == (10, 3, 1, 0)
    assert sorted(a.reservations.values()) == [1, 2]


def test_a_command_whose_key_was_committed_before_fails_alone(
    store: OrderFlowApplication,
) -> None:
    group = appender(store)
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=5))])
    first = group.run_batch([decision(order(("A", 1)), key="k")])
    assert not isinstance(first[0], BaseException)
    outcomes = group.run_batch(
        [
            decision(ReceiveStock(sku="A", quantity=4)),
            decision(order(("A", 1)), key="k"),  # the batch's insert hits the stored key
            decision(order(("A", 2))),
        ]
    )
    group.close()
    # answered from the store, as the first command with its key was answered
    assert isinstance(outcomes[1], StoredAnswer)
    assert (outcomes[1].answer, outcomes[1].position) == first[0]
    assert not isinstance(outcomes[0], BaseException)
    assert not isinstance(outcomes[2], BaseException)
    a = item(store, "A")
    assert (a.on_hand, a.reserved) == (9, 3)


def test_a_key_whose_command_the_domain_now_refuses_gets_its_first_answer(
    store: OrderFlowApplication,
) -> None:
    """Keys are claimed without a lookup first; a refusal appends no row to collide with,
    so the store must be asked before the refusal is answered."""
    group = appender(store)
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=1))])
    first = group.run_batch([decision(order(("A", 1)), key="k")])
    assert not isinstance(first[0], BaseException)
    before = head(store)
    again = group.run_batch([decision(order(("A", 1)), key="k")])  # no stock left now
    group.close()
    assert isinstance(again[0], StoredAnswer)
    assert (again[0].answer, again[0].position) == first[0]
    assert head(store) == before


def test_a_command_whose_caller_gave_up_before_the_appender_took_it_is_never_decided(
    store: OrderFlowApplication,
) -> None:
    """An awaited command whose request is cancelled while it waits in the queue appends
    nothing; the batch the appender was deciding meanwhile, and the next, commit."""
    group = appender(store)
    group.append(decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=10)))
    deciding, release = threading.Event(), threading.Event()
    receive_one = decision(ReceiveStock(sku="A", quantity=1))

    def held(uow: UnitOfWork) -> Answer:
        deciding.set()
        release.wait(timeout=10)
        return receive_one.decide(uow)

    first = group.submit(Decision(held, CONTEXT))
    assert deciding.wait(timeout=10)
    given_up = group.submit(decision(ReceiveStock(sku="A", quantity=100)))
    assert given_up.cancel()  # still queued: the appender is busy deciding `first`
    release.set()
    assert not isinstance(first.result(timeout=10), BaseException)
    after = group.submit(decision(ReceiveStock(sku="A", quantity=1000))).result(timeout=10)
    group.close()
    assert not isinstance(after, BaseException)
    assert item(store, "A").on_hand == 10 + 1 + 1000


def test_a_command_reads_only_what_changed_whatever_the_history(
    postgres_settings: Settings,
) -> None:
    settings = postgres_settings.model_copy(update={"snapshot_interval_inventory": 100})
    app = open_event_store(settings)
    group = appender(app)
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=1))])
    for _ in range(10):  # a history of 1 + 500 events, in batches of 50
        group.run_batch([decision(ReceiveStock(sku="A", quantity=1)) for _ in range(50)])
    read = events_decoded()
    group.run_batch([decision(order(("A", 1)))])
    assert events_decoded() - read == 0  # in memory and up to date: nothing to read
    group.close()
    app.close()

    cold = open_event_store(settings)  # a new process: from the latest snapshot
    group = appender(cold)
    read = events_decoded()
    group.run_batch([decision(order(("A", 1)))])
    # the snapshot at version 500, the last receipt and the earlier order's reservation
    assert events_decoded() - read == 3
    group.close()
    cold.close()


def test_what_another_process_appended_reaches_the_cached_aggregates(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_follower, "CURRENT_FOR_S", 0.0)  # every batch reads the log first
    mine, theirs = open_event_store(postgres_settings), open_event_store(postgres_settings)
    group = appender(mine)
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=5))])
    their_group = appender(theirs)
    their_group.run_batch([decision(ReceiveStock(sku="A", quantity=4)) for _ in range(3)])
    read = events_decoded()
    outcomes = group.run_batch([decision(order(("A", 10)))])  # needs their 12 units too
    assert not isinstance(outcomes[0], BaseException)
    assert events_decoded() - read == 3  # their three receipts, from the log, once
    cached = mine.repository.cache
    assert cached is not None
    item_a = cached.get(InventoryItem.create_id("A"))
    assert isinstance(item_a, InventoryItem)
    stored = item(mine, "A")
    assert (item_a.version, item_a.on_hand, item_a.reserved) == (stored.version, 17, 10)
    assert (stored.on_hand, stored.reserved) == (17, 10)
    for closing in (group, their_group):
        closing.close()
    mine.close()
    theirs.close()


class CountingAlone:
    """The one-at-a-time appender, counting the commands sent to it."""

    def __init__(self, app: OrderFlowApplication) -> None:
        keys = EventStoreIdempotency(app)
        self._alone = OneAtATime(lambda: EventStoreUnitOfWork(app), keys)
        self.sent = 0

    def append(self, d: Decision[Any]) -> tuple[Any, int] | StoredAnswer:
        self.sent += 1
        return self._alone.append(d)


def test_a_batch_that_another_process_overtook_is_decided_again_as_a_batch(
    postgres_settings: Settings,
) -> None:
    """Another writer appends to the batch's SKU between its catch-up and its append: the
    version it decided is taken. The batch catches up and decides again, as a batch, from
    the state the other writer left; none of its commands goes one at a time."""
    mine, theirs = open_event_store(postgres_settings), open_event_store(postgres_settings)
    alone = CountingAlone(mine)
    keys = EventStoreIdempotency(mine)
    group = GroupAppender(mine, alone, keys)
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=1, on_hand=5))])
    their_group = appender(theirs)
    overtaken: list[Any] = []

    def racing(uow: UnitOfWork) -> Answer:
        if not overtaken:  # the other process appends while this batch decides
            overtaken.extend(their_group.run_batch([decision(ReceiveStock(sku="A", quantity=4))]))
        return decision(order(("A", 3))).decide(uow)

    outcomes = group.run_batch([Decision(racing, CONTEXT), decision(order(("A", 1)), key="k2")])
    for closing in (group, their_group):
        closing.close()
    assert not isinstance(overtaken[0], BaseException)
    assert [type(o) for o in outcomes] == [tuple, tuple]  # both accepted, after the receipt
    assert alone.sent == 0
    stored = item(mine, "A")  # the oracle: the aggregate loaded from the store
    assert (stored.on_hand, stored.reserved) == (5 + 4, 3 + 1)
    assert sorted(stored.reservations.values()) == [1, 3]
    mine.close()
    theirs.close()
