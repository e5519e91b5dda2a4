"""Group commit is invisible: random command mixes, cut into random batches and run by the
group appender, give the same answers, the same aggregates and the same events (in the
same order within each aggregate) as the same commands run one at a time, each in its
own transaction. Both run on real PostgreSQL, each on its own database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic_core import to_jsonable_python

from commands.bus import OneAtATime
from commands.errors import ConcurrencyConflict
from commands.handlers import HANDLERS
from commands.ports import (
    Answer,
    CommandContext,
    Decision,
    IdempotencyClaim,
    StoredAnswer,
    UnitOfWork,
)
from commands.results import OrderFacts
from domain.inventory import InventoryItem
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.group_jobs import Outcome
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from infra.settings import Settings
from schemas.commands import (
    AdjustStock,
    CancelOrder,
    Command,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ShipOrder,
)
from tests.aggregate_state import public_state
from tests.conftest import TEST_SECRET
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.postgres

SKUS = 3
EXAMPLES = count()
Decided = tuple[Any, int]  # what a command decided, and its last position
REPLAYED = ConcurrencyConflict("answered from the stored answer")
TIMES = {"created_on", "modified_on", "timestamp"}

# A step names its SKUs by index and its order by the index of an earlier placed order,
# resolved when it is decided: the same in both runs, whatever the batches.
step = st.one_of(
    st.tuples(st.just("register"), st.integers(0, SKUS - 1), st.integers(0, 6)),
    st.tuples(st.just("receive"), st.integers(0, SKUS - 1), st.integers(1, 4)),
    st.tuples(st.just("adjust"), st.integers(0, SKUS - 1), st.integers(-4, 4)),
    st.tuples(
        st.just("place"),
        st.lists(
            st.tuples(st.integers(0, SKUS - 1), st.integers(1, 4)),
            min_size=1,
            max_size=3,
            unique_by=lambda line: line[0],
        ),
        st.sampled_from([None, "k1", "k2"]),
    ),
    st.tuples(st.just("pay"), st.integers(0, 9)),
    st.tuples(st.just("ship"), st.integers(0, 9)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
)


@dataclass
class Side:
    app: OrderFlowApplication
    run: Callable[[list[Decision[Any]]], list[Outcome | BaseException]]
    placed: dict[int, UUID]  # step -> the order it placed (a retried step: its last one)

    def orders(self) -> list[UUID]:
        return [self.placed[n] for n in sorted(self.placed)]


@pytest.fixture(scope="module", params=[False, True], ids=["undo from the store", "from copies"])
def stores(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[tuple[Side, Side]]:
    """The grouped side undoes a refused command's changes from the store, or from the
    copies a batch keeps of what it loaded (as it does after another process overtook one
    of its batches)."""
    apps: list[OrderFlowApplication] = []
    names = [f"gc_{kind}_{uuid4().hex[:8]}" for kind in ("grouped", "alone")]
    try:
        for name in names:
            url = postgres_server.create_database(name)
            apps.append(open_event_store(Settings(database_url=url, jwt_secret=TEST_SECRET)))
        grouped_app, alone_app = apps
        grouped_keys = EventStoreIdempotency(grouped_app)
        appender = GroupAppender(
            grouped_app,
            OneAtATime(lambda: EventStoreUnitOfWork(grouped_app), grouped_keys),
            grouped_keys,
            keep_copies=request.param,
        )
        alone = OneAtATime(
            lambda: EventStoreUnitOfWork(alone_app), EventStoreIdempotency(alone_app)
        )

        def one_by_one(decisions: list[Decision[Any]]) -> list[Outcome | BaseException]:
            outcomes: list[Outcome | BaseException] = []
            for d in decisions:
                try:
                    outcomes.append(alone.append(d))
                except Exception as error:
                    outcomes.append(error)
            return outcomes

        yield Side(grouped_app, appender.run_batch, {}), Side(alone_app, one_by_one, {})
        appender.close()
    finally:
        for app in apps:
            app.close()
        for name in names:
            postgres_server.drop_database(name)


def command(raw: tuple[Any, ...], skus: list[str], placed: list[UUID]) -> Command:
    """Orders are named among those placed without an Idempotency-Key: a keyed one may be
    decided and then refused as a duplicate, differently in the two runs."""
    kind = raw[0]
    if kind == "register":
        return RegisterItem(sku=skus[raw[1]], name="n", unit_price_cents=100, on_hand=raw[2])
    if kind == "receive":
        return ReceiveStock(sku=skus[raw[1]], quantity=raw[2])
    if kind == "adjust":
        return AdjustStock(sku=skus[raw[1]], delta=raw[2] or 1, reason="count")
    if kind == "place":
        lines = tuple(OrderLineRequest(sku=skus[s], quantity=q) for s, q in raw[1])
        return PlaceOrder(customer_id="c", lines=lines)
    order_id = placed[raw[1] % len(placed)] if placed else UUID(int=raw[1])
    if kind == "pay":
        return PayOrder(order_id=order_id, amount_cents=100, payment_ref="p")
    if kind == "ship":
        return ShipOrder(order_id=order_id, carrier="c", tracking_number="t")
    return CancelOrder(order_id=order_id, reason="r")


def decision(
    side: Side, raw: tuple[Any, ...], skus: list[str], n: int, ex: int
) -> Decision[Answer]:
    claim = None
    if raw[0] == "place" and raw[2] is not None:
        claim = IdempotencyClaim(f"ex{ex}", raw[2], "same")

    def decide(uow: UnitOfWork) -> Answer:
        cmd = command(raw, skus, side.orders())
        result = HANDLERS[type(cmd)](cmd, uow)
        if isinstance(result, OrderFacts) and isinstance(cmd, PlaceOrder) and claim is None:
            side.placed[n] = result.order_id  # decided: later steps may name it
        return Answer(201, to_jsonable_python(result))

    ns = UUID(int=ex)
    return Decision(decide, CommandContext(f"ex{ex}", "prop", uuid5(ns, str(n))), claim)


def normalised(value: Any, orders: list[UUID]) -> str:
    """JSON with timestamps dropped and order ids named by their place in the run."""
    text = json.dumps(timeless(value), default=str, sort_keys=True)
    for i, order_id in enumerate(orders):
        text = text.replace(str(order_id), f"order-{i}").replace(order_id.hex, f"order-{i}")
    return text


def timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list | tuple):
        return [timeless(v) for v in value]
    return value


def answer(outcome: Decided | BaseException) -> Any:
    if isinstance(outcome, ConcurrencyConflict):
        return "ConcurrencyConflict"  # the bus retries it: its wording is not an answer
    if isinstance(outcome, BaseException):
        return [type(outcome).__name__, str(outcome)]
    return to_jsonable_python(outcome[0])


def as_the_bus_answers(
    steps: list[tuple[Any, ...]], outcomes: list[Decided | BaseException]
) -> list[Any]:
    """What the bus answers: a key committed by an earlier step is answered with that
    step's answer (the appenders find it in the store, before or after deciding)."""
    answered: dict[str, Any] = {}
    said = []
    for raw, outcome in zip(steps, outcomes, strict=True):
        key = raw[2] if raw[0] == "place" else None
        if key is not None and key in answered:
            said.append(["replayed", answered[key]])
            continue
        said.append(answer(outcome))
        if key is not None and not isinstance(outcome, BaseException):
            answered[key] = to_jsonable_python(outcome[0])
    return said


def stored(app: OrderFlowApplication, ids: list[UUID]) -> dict[str, Any]:
    """Each aggregate loaded through its class, and its stored events, from the store."""
    fresh = OrderFlowApplication({**app.env, "AGGREGATE_CACHE_MAXSIZE": ""})  # no cache
    found: dict[str, Any] = {}
    try:
        for aggregate_id in ids:
            try:
                aggregate: Aggregate = fresh.repository.get(aggregate_id)
            except AggregateNotFoundError:
                continue
            events = [
                (e.originator_version, e.topic, json.loads(e.state))
                for e in app.recorder.select_events(aggregate_id)
            ]
            found[str(aggregate_id)] = [public_state(aggregate), events]
    finally:
        fresh.close()
    return found


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stock=st.lists(st.integers(0, 6), min_size=SKUS, max_size=SKUS),
    steps=st.lists(step, min_size=1, max_size=24),
    cuts=st.lists(st.integers(1, 8), min_size=1, max_size=24),
)
def test_batches_decide_and_store_what_one_at_a_time_would(
    stores: tuple[Side, Side], stock: list[int], steps: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    grouped, alone = stores
    steps = [("register", i, on_hand) for i, on_hand in enumerate(stock)] + steps
    ex = next(EXAMPLES)
    skus = [f"E{ex}-{i}" for i in range(SKUS)]
    answers = {}
    for side in (grouped, alone):
        side.placed = {}
        decisions = [decision(side, raw, skus, n, ex) for n, raw in enumerate(steps)]
        outcomes: list[Decided | BaseException] = []
        start, sizes = 0, iter(cuts * len(steps))
        committed: set[str] = set()
        while start < len(decisions):
            # one at a time, the appender looks up the key before each command
            chunk = decisions[start : start + (next(sizes) if side is grouped else 1)]
            start += len(chunk)
            # a key already committed is answered from the store (as both appenders do)
            sent = [d for d in chunk if d.claim is None or d.claim.key not in committed]
            results, sent_ids = iter(side.run(sent)), {id(d) for d in sent}
            for d in chunk:
                outcome = next(results) if id(d) in sent_ids else REPLAYED
                if isinstance(outcome, StoredAnswer):  # a key twice in one batch
                    outcome = REPLAYED
                outcomes.append(outcome)
                if d.claim is not None and not isinstance(outcome, BaseException):
                    committed.add(d.claim.key)
        positions = [o[1] for o in outcomes if not isinstance(o, BaseException)]
        assert positions == sorted(positions)  # committed in the order decided
        orders = [  # every order stored, in the order the steps placed them
            UUID(o[0].body["order_id"])
            for o in outcomes
            if not isinstance(o, BaseException) and "customer_id" in o[0].body
        ]
        ids = [InventoryItem.create_id(s) for s in skus] + orders
        answers[id(side)] = (
            normalised(as_the_bus_answers(steps, outcomes), orders),
            normalised(stored(side.app, ids), orders),
        )
    (said, kept), (said_alone, kept_alone) = answers[id(grouped)], answers[id(alone)]
    assert json.loads(said) == json.loads(said_alone)
    assert json.loads(kept) == json.loads(kept_alone)
