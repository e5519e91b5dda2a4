import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import count
from typing import TypeVar
from unittest.mock import ANY
from uuid import UUID

import pytest

from commands.bus import CommandBus, OneAtATime, Render, Reply, RetryPolicy
from commands.errors import (
    ConcurrencyConflict,
    IdempotencyKeyReused,
    SkuAlreadyRegistered,
    UnknownOrder,
)
from commands.ports import Answer, CommandContext, Decision, IdempotencyClaim, StoredAnswer
from commands.results import OrderFacts, Result
from domain.errors import InsufficientStock
from schemas.commands import (
    CancelOrder,
    ChangePrice,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    RegisterItem,
    ShipOrder,
)
from tests.fakes import FakeStore

CONTEXT = CommandContext(correlation_id="corr-1", actor="tester")
T = TypeVar("T")


class ThreadedAppender:
    """A Submitter over the fake store: decides each command in a thread of its own, as
    the group appender does, so `answer_async` awaits its future."""

    def __init__(self, store: FakeStore) -> None:
        self.alone = OneAtATime(store.unit_of_work, store)
        self.thread = ThreadPoolExecutor(1)
        self.submitters: list[threading.Thread] = []  # who called submit

    def append(self, decision: Decision[T]) -> tuple[T, int] | StoredAnswer:
        return self.submit(decision).result()

    def submit(self, decision: Decision[T]) -> Future[tuple[T, int] | StoredAnswer]:
        self.submitters.append(threading.current_thread())
        return self.thread.submit(self.alone.append, decision)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def bus(store: FakeStore) -> CommandBus:
    return stocked(
        CommandBus(store.unit_of_work, store, RetryPolicy(attempts=5, first_backoff_s=0))
    )


@pytest.fixture
def threaded(store: FakeStore) -> Iterator[ThreadedAppender]:
    appender = ThreadedAppender(store)
    yield appender
    appender.thread.shutdown()


@pytest.fixture(params=["in a worker thread", "awaiting a submitter"])
def async_bus(
    request: pytest.FixtureRequest, store: FakeStore, threaded: ThreadedAppender
) -> CommandBus:
    """The bus as an event loop drives it: with an appender that decides in the caller's
    thread, and with one that decides in its own (the group appender's way)."""
    retry = RetryPolicy(attempts=5, first_backoff_s=0)
    appender = threaded if request.param == "awaiting a submitter" else None
    return stocked(CommandBus(store.unit_of_work, store, retry, appender))


def stocked(bus: CommandBus) -> CommandBus:
    for sku, price, on_hand in [("A", 1000, 10), ("B", 250, 1)]:
        bus.handle(
            RegisterItem(sku=sku, name=sku, unit_price_cents=price, on_hand=on_hand), CONTEXT
        )
    return bus


def place(bus: CommandBus, lines: dict[str, int], customer: str = "c-1") -> UUID:
    command = PlaceOrder(
        customer_id=customer,
        lines=tuple(OrderLineRequest(sku=sku, quantity=q) for sku, q in lines.items()),
    )
    placed = bus.handle(command, CONTEXT).result
    assert isinstance(placed, OrderFacts)
    return placed.order_id


def numbered(status: int) -> Render:
    """An edge's renderer that numbers its answers: a replay rendered again would show."""
    rendered = count(1)

    def render(result: Result) -> Answer:
        assert isinstance(result, OrderFacts)
        return Answer(status, {"order_id": str(result.order_id), "answer": next(rendered)})

    return render


def test_placing_an_order_reserves_stock_and_answers_the_position(
    bus: CommandBus, store: FakeStore
) -> None:
    reply = bus.handle(
        PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=3),)), CONTEXT
    )
    assert isinstance(reply.result, OrderFacts)
    assert reply.result.status == "reserved"
    assert reply.result.total_cents == 3000
    assert reply.position == len(store.log)
    assert store.item("A").reserved == 3


def test_an_order_short_on_one_sku_reserves_nothing_anywhere(
    bus: CommandBus, store: FakeStore
) -> None:
    before = len(store.log)
    with pytest.raises(InsufficientStock):
        place(bus, {"A": 2, "B": 5})
    assert len(store.log) == before
    assert (store.item("A").reserved, store.item("B").reserved) == (0, 0)


def test_unit_prices_are_fixed_when_the_order_is_placed(bus: CommandBus, store: FakeStore) -> None:
    order_id = place(bus, {"A": 1})
    bus.handle(ChangePrice(sku="A", unit_price_cents=9999), CONTEXT)
    assert store.order(order_id).total_cents == 1000
    place(bus, {"A": 1})
    assert store.item("A").unit_price_cents == 9999


def test_registering_a_sku_twice_is_refused(bus: CommandBus) -> None:
    with pytest.raises(SkuAlreadyRegistered):
        bus.handle(RegisterItem(sku="A", name="again", unit_price_cents=1), CONTEXT)


def test_every_event_records_correlation_causation_and_actor(
    bus: CommandBus, store: FakeStore
) -> None:
    place(bus, {"A": 1})
    assert store.metadata[-1]["correlation_id"] == "corr-1"
    assert store.metadata[-1]["actor"] == "tester"
    assert store.metadata[-1]["causation_id"] == str(CONTEXT.command_id)


def test_shipping_commits_the_reserved_stock(bus: CommandBus, store: FakeStore) -> None:
    order_id = place(bus, {"A": 4})
    bus.handle(PayOrder(order_id=order_id, amount_cents=4000, payment_ref="p"), CONTEXT)
    bus.handle(ShipOrder(order_id=order_id, carrier="DHL", tracking_number="T"), CONTEXT)
    item = store.item("A")
    assert (item.on_hand, item.reserved) == (6, 0)


def test_cancelling_releases_the_reserved_stock(bus: CommandBus, store: FakeStore) -> None:
    order_id = place(bus, {"A": 4, "B": 1})
    bus.handle(CancelOrder(order_id=order_id, reason="no"), CONTEXT)
    assert (store.item("A").available, store.item("B").available) == (10, 1)


def test_a_customer_cannot_touch_another_customers_order(bus: CommandBus) -> None:
    order_id = place(bus, {"A": 1}, customer="alice")
    with pytest.raises(UnknownOrder):
        bus.handle(CancelOrder(order_id=order_id, reason="x", acting_customer="mallory"), CONTEXT)


def test_conflicts_are_retried_until_the_command_goes_through(
    bus: CommandBus, store: FakeStore
) -> None:
    store.conflicts_to_inject = 3
    place(bus, {"A": 1})
    assert store.item("A").reserved == 1


def test_retries_are_bounded(bus: CommandBus, store: FakeStore) -> None:
    store.conflicts_to_inject = 5
    before = len(store.log)
    with pytest.raises(ConcurrencyConflict):
        place(bus, {"A": 1})
    assert len(store.log) == before


def test_the_same_idempotency_key_and_body_answers_again_without_appending(
    bus: CommandBus, store: FakeStore
) -> None:
    claim = IdempotencyClaim("c-1", "key-1", "fingerprint-1")
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    render = numbered(201)
    first = bus.answer(command, CONTEXT, render, claim)
    appended = len(store.log)
    again = bus.answer(command, CONTEXT, render, claim)
    assert first == Reply(Answer(201, {"order_id": ANY, "answer": 1}), appended)
    assert again == Reply(first.answer, first.position, replayed=True)
    assert len(store.log) == appended


def test_without_an_idempotency_key_every_answer_is_new(bus: CommandBus, store: FakeStore) -> None:
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    render = numbered(201)
    first, second = (bus.answer(command, CONTEXT, render) for _ in range(2))
    assert (first.answer.body["answer"], second.answer.body["answer"]) == (1, 2)
    assert (first.replayed, second.replayed) == (False, False)
    assert store.item("A").reserved == 2


def test_the_same_idempotency_key_with_another_body_is_refused(
    bus: CommandBus, store: FakeStore
) -> None:
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    bus.answer(command, CONTEXT, numbered(201), IdempotencyClaim("c-1", "key-1", "fingerprint-1"))
    appended = len(store.log)
    with pytest.raises(IdempotencyKeyReused):
        bus.answer(
            command, CONTEXT, numbered(201), IdempotencyClaim("c-1", "key-1", "fingerprint-2")
        )
    assert len(store.log) == appended


def test_idempotency_keys_are_scoped_to_the_caller(bus: CommandBus, store: FakeStore) -> None:
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    bus.answer(command, CONTEXT, numbered(201), IdempotencyClaim("alice", "key-1", "f"))
    bus.answer(command, CONTEXT, numbered(201), IdempotencyClaim("bob", "key-1", "f"))
    assert store.item("A").reserved == 2


def answered(
    bus: CommandBus, command: PlaceOrder, render: Render, claim: IdempotencyClaim
) -> Reply:
    return asyncio.run(bus.answer_async(command, CONTEXT, render, claim))


def test_an_awaited_answer_is_the_answer_and_a_repeated_key_replays_it(
    async_bus: CommandBus, store: FakeStore
) -> None:
    claim = IdempotencyClaim("c-1", "key-1", "fingerprint-1")
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=2),))
    render = numbered(201)
    first = answered(async_bus, command, render, claim)
    appended = len(store.log)
    again = answered(async_bus, command, render, claim)
    assert first == Reply(Answer(201, {"order_id": ANY, "answer": 1}), appended)
    assert again == Reply(first.answer, first.position, replayed=True)
    assert store.item("A").reserved == 2
    with pytest.raises(IdempotencyKeyReused):
        answered(async_bus, command, render, IdempotencyClaim("c-1", "key-1", "another"))
    assert len(store.log) == appended


def test_an_awaited_command_is_retried_on_conflicts_then_given_up(
    async_bus: CommandBus, store: FakeStore
) -> None:
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    claim = IdempotencyClaim("c-1", "key-1", "fingerprint-1")
    store.conflicts_to_inject = 4
    answered(async_bus, command, numbered(201), claim)
    assert store.item("A").reserved == 1
    before = len(store.log)
    store.conflicts_to_inject = 5
    with pytest.raises(ConcurrencyConflict):
        answered(async_bus, command, numbered(201), IdempotencyClaim("c-1", "key-2", "f"))
    assert len(store.log) == before


def test_an_awaited_command_is_submitted_from_the_event_loop_s_own_thread(
    store: FakeStore, threaded: ThreadedAppender
) -> None:
    bus = stocked(CommandBus(store.unit_of_work, store, RetryPolicy(attempts=5), threaded))
    command = PlaceOrder(customer_id="c-1", lines=(OrderLineRequest(sku="A", quantity=1),))
    reply = answered(bus, command, numbered(201), IdempotencyClaim("c-1", "key-1", "f"))
    assert threaded.submitters[-1] is threading.main_thread()  # asyncio.run's loop runs here
    assert reply.position == len(store.log)
