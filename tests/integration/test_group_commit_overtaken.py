"""Two write processes on one database: another process appends to some of a batch's
aggregates between the batch's catch-up and its append, so the append conflicts. Only the
commands that looked up one of those aggregates (or one that a command taken out before
them looked up) are decided again, after catching up; the rest of the batch stands as it
was decided, and nothing goes one command at a time unless the batch is overtaken at
every attempt. The oracle is the event store: aggregates loaded fresh through their
classes, and each stream's stored events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest

from commands.ports import Answer, Decision, UnitOfWork
from domain.errors import InsufficientStock
from domain.inventory import InventoryItem
from infra.eventstore import group_commit
from infra.eventstore.contention import Contention
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency
from infra.settings import Settings
from schemas.commands import AdjustStock, ReceiveStock, RegisterItem
from tests.integration.test_group_commit import (
    CountingAlone,
    appender,
    decision,
    head,
    item,
    order,
)

pytestmark = pytest.mark.postgres


class Processes:
    """Two processes' event stores on one database. `before_append[n]`, if set, runs just
    before the n-th append of `mine`'s group appender (counted from 0), after its batch
    was decided: the other process overtaking it."""

    def __init__(self, settings: Settings) -> None:
        self.mine, self.theirs = open_event_store(settings), open_event_store(settings)
        self.alone = CountingAlone(self.mine)
        self.contention = Contention(after=1)
        self.group = GroupAppender(
            self.mine, self.alone, EventStoreIdempotency(self.mine), contention=self.contention
        )
        self.their_group = appender(self.theirs)
        self.before_append: dict[int, Callable[[], None]] = {}
        self.group_appends = 0
        save = self.mine.save_decided

        def overtaken(events: Any, aggregates: Any, **kwargs: Any) -> Any:
            if "answers" in kwargs:  # the group appender's, not one command's
                run = self.before_append.get(self.group_appends)
                self.group_appends += 1
                if run is not None:
                    run()
            return save(events, aggregates, **kwargs)

        self.mine.save_decided = overtaken  # type: ignore[method-assign]
        self.contended = False
        self.store_reads = 0  # of one aggregate's events or snapshot, by `mine`
        select = self.mine.recorder.select_events

        def counted_select(*args: Any, **kwargs: Any) -> Any:
            self.store_reads += 1
            return select(*args, **kwargs)

        self.mine.recorder.select_events = counted_select  # type: ignore[method-assign]

    def theirs_append(self, *commands: Any) -> Callable[[], None]:
        def run() -> None:
            outcomes = self.their_group.run_batch([decision(c) for c in commands])
            assert not any(isinstance(o, BaseException) for o in outcomes)

        return run

    def close(self) -> None:
        self.group.close()
        self.their_group.close()
        self.mine.close()
        self.theirs.close()


@pytest.fixture(params=["first conflict", "contended"])
def processes(postgres_settings: Settings, request: pytest.FixtureRequest) -> Iterator[Processes]:
    """Five SKUs, registered by `mine`. Contended: a batch of `mine` was overtaken just
    before, so its batches keep copies of what they load, to undo from."""
    both = Processes(postgres_settings)
    both.group.run_batch(
        [
            decision(RegisterItem(sku=sku, name=sku, unit_price_cents=100, on_hand=on_hand))
            for sku, on_hand in [("A", 2), ("B", 5), ("C", 3), ("D", 5), ("E", 5), ("Z", 9)]
        ]
    )
    if request.param == "contended":
        both.before_append[1] = both.theirs_append(ReceiveStock(sku="Z", quantity=1))
        both.group.run_batch([decision(order(("Z", 1)))])
        assert both.group_appends == 3  # overtaken once
    both.group_appends = 0
    both.before_append.clear()
    both.alone.sent = 0
    both.store_reads = 0
    both.contended = request.param == "contended"
    yield both
    both.close()


def counted(d: Decision[Answer], times: Counter[int], n: int) -> Decision[Answer]:
    """The decision, counting how often it is decided."""

    def decide(uow: UnitOfWork) -> Answer:
        times[n] += 1
        return d.decide(uow)

    return Decision(decide, d.context, d.claim)


def stored_order_events(app: OrderFlowApplication, order_id: UUID) -> list[int]:
    return [e.originator_version for e in app.recorder.select_events(order_id)]


def reservations_stored(app: OrderFlowApplication, sku: str) -> Counter[str]:
    """How many stored events of the SKU's stream name each order (by its hex id)."""
    named: Counter[str] = Counter()
    for stored in app.recorder.select_events(InventoryItem.create_id(sku)):
        order_id = getattr(app.mapper.to_domain_event(stored), "order_id", None)
        if order_id is not None:
            named[order_id.hex] += 1
    return named


def placed(outcome: Any) -> UUID:
    assert isinstance(outcome, tuple), outcome
    return UUID(outcome[0].body["order_id"])


def test_only_the_commands_resting_on_what_the_other_process_changed_are_decided_again(
    processes: Processes,
) -> None:
    p = processes
    before = head(p.mine)
    p.before_append[0] = p.theirs_append(AdjustStock(sku="A", delta=-1, reason="count"))
    times: Counter[int] = Counter()
    batch = [
        decision(order(("A", 1)), key="k1"),  # rests on A, which they change: again
        decision(order(("B", 1))),  # stands
        decision(order(("C", 1), ("A", 1))),  # rests on A: again, and refused then
        decision(order(("C", 2))),  # C was looked up by one taken out: again
        decision(order(("D", 1))),  # stands
        decision(order(("B", 1), ("E", 1))),  # B only by one that stands: stands
    ]
    outcomes = p.group.run_batch([counted(d, times, n) for n, d in enumerate(batch)])
    # contended, A and C are undone from the batch's copies, and A brought up to date
    # from the log: nothing is read back from the store; else A and C are
    assert (p.store_reads == 0) == p.contended

    assert isinstance(outcomes[2], InsufficientStock)  # A holds 1 now, reserved for the first
    assert dict(times) == {0: 2, 1: 1, 2: 2, 3: 2, 4: 1, 5: 1}
    assert p.alone.sent == 0
    accepted = [placed(outcomes[n]) for n in (0, 1, 3, 4, 5)]
    first, b1, c2, d1, b1e1 = accepted
    # the oracle: aggregates loaded fresh from the store, as one at a time would leave them
    expected = {"A": (1, {first: 1}), "B": (5, {b1: 1, b1e1: 1}), "C": (3, {c2: 2})}
    expected |= {"D": (5, {d1: 1}), "E": (5, {b1e1: 1})}
    for sku, (on_hand, reservations) in expected.items():
        stored = item(p.mine, sku)
        assert (sku, stored.on_hand) == (sku, on_hand)
        assert stored.reservations == {o.hex: q for o, q in reservations.items()}
        assert reservations_stored(p.mine, sku) == Counter(o.hex for o in reservations)
    # every accepted order's events exactly once: created, a reservation per line, reserved
    for order_id, lines in zip(accepted, [1, 1, 1, 1, 2], strict=True):
        assert stored_order_events(p.mine, order_id) == [1, 2]
        assert sum(reservations_stored(p.mine, s)[order_id.hex] for s in "ABCDE") == lines
    appended = p.mine.recorder.select_notifications(before, 100, inclusive_of_start=False)
    assert len(appended) == 1 + sum(2 + lines for lines in [1, 1, 1, 1, 2])  # theirs, ours
    # the key of the command decided again is stored with the answer it was given
    kept = EventStoreIdempotency(p.mine).find("tester", "k1")
    assert kept is not None
    assert (kept.answer, kept.position) == outcomes[0]
    # the cache holds what the store holds
    cache = p.mine.repository.cache
    assert cache is not None
    for sku in "ABCDE":
        cached = cache.get(InventoryItem.create_id(sku))
        assert isinstance(cached, InventoryItem)
        stored = item(p.mine, sku)
        assert (cached.version, cached.on_hand, cached.reservations) == (
            stored.version,
            stored.on_hand,
            stored.reservations,
        )


def test_a_batch_overtaken_twice_is_decided_again_twice_and_stored_as_one(
    processes: Processes,
) -> None:
    p = processes
    p.before_append[0] = p.theirs_append(ReceiveStock(sku="A", quantity=1))
    p.before_append[1] = p.theirs_append(ReceiveStock(sku="B", quantity=1))
    times: Counter[int] = Counter()
    batch = [decision(order(("A", 1))), decision(order(("B", 1))), decision(order(("D", 1)))]
    outcomes = p.group.run_batch([counted(d, times, n) for n, d in enumerate(batch)])
    assert (p.store_reads == 0) == p.contended

    assert dict(times) == {0: 2, 1: 2, 2: 1}  # A after their first append, B after the second
    assert p.alone.sent == 0
    a1, b1, d1 = (placed(o) for o in outcomes)
    for sku, on_hand, order_id in [("A", 3, a1), ("B", 6, b1), ("D", 5, d1)]:
        stored = item(p.mine, sku)
        assert (stored.on_hand, stored.reservations) == (on_hand, {order_id.hex: 1})
        assert reservations_stored(p.mine, sku) == Counter([order_id.hex])
    for order_id in (a1, b1, d1):
        assert stored_order_events(p.mine, order_id) == [1, 2]
    positions = sorted(o[1] for o in outcomes if isinstance(o, tuple))
    assert positions[-1] == head(p.mine)  # one append after their last


def test_a_batch_overtaken_at_every_attempt_goes_one_command_at_a_time(
    processes: Processes,
) -> None:
    p = processes
    for attempt in range(group_commit.ATTEMPTS):
        p.before_append[attempt] = p.theirs_append(ReceiveStock(sku="A", quantity=1))
    outcomes = p.group.run_batch([decision(order(("A", 1))), decision(order(("B", 2)))])

    assert p.alone.sent == 2  # both: the batch is given up, the order on B with it
    a1, b2 = (placed(o) for o in outcomes)
    a, b = item(p.mine, "A"), item(p.mine, "B")
    assert (a.on_hand, a.reservations) == (2 + group_commit.ATTEMPTS, {a1.hex: 1})
    assert (b.on_hand, b.reservations) == (5, {b2.hex: 2})
    assert reservations_stored(p.mine, "A") == Counter([a1.hex])
    assert reservations_stored(p.mine, "B") == Counter([b2.hex])


def test_the_aggregates_another_process_overtook_a_batch_on_are_told_contended(
    processes: Processes,
) -> None:
    """What the write API routes by (ADR 0028): the SKU the other process appended to, not
    the other SKUs of the overtaken batch."""
    processes.before_append[0] = processes.theirs_append(ReceiveStock(sku="A", quantity=1))
    outcomes = processes.group.run_batch([decision(order(("A", 1))), decision(order(("B", 1)))])

    assert all(isinstance(o, tuple) for o in outcomes)
    assert processes.group_appends == 2  # overtaken once, then appended
    assert processes.contention.contended(InventoryItem.create_id("A"))
    assert not processes.contention.contended(InventoryItem.create_id("B"))
