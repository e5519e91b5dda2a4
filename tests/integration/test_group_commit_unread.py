"""A group appender whose own last append followed on from what it had read decides the
next batch without reading the log first (infra/eventstore/log_follower.py). What another
process appended meanwhile must still count: an append to an aggregate it changed
conflicts, a refusal is decided again on fresh state, and a command that relied on an
aggregate the batch does not append to is decided again once the log is read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from commands.ports import Answer, Decision, UnitOfWork
from infra.eventstore.event_store import open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency
from infra.settings import Settings
from schemas.commands import ChangePrice, ReceiveStock, RegisterItem
from tests.integration.test_group_commit import (
    CONTEXT,
    CountingAlone,
    appender,
    decision,
    item,
    order,
)

pytestmark = pytest.mark.postgres


class Stores:
    """Two processes' event stores on one database; `mine` counts its reads of the log."""

    def __init__(self, settings: Settings) -> None:
        self.mine, self.theirs = open_event_store(settings), open_event_store(settings)
        self.log_reads = 0
        read = self.mine.notifications_after  # the log follower's read

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.log_reads += 1
            return read(*args, **kwargs)

        self.mine.notifications_after = counted  # type: ignore[method-assign]

    def close(self) -> None:
        self.mine.close()
        self.theirs.close()


@pytest.fixture
def stores(postgres_settings: Settings) -> Iterator[Stores]:
    both = Stores(postgres_settings)
    yield both
    both.close()


def ours_and_theirs(stores: Stores) -> tuple[GroupAppender, CountingAlone, GroupAppender]:
    alone = CountingAlone(stores.mine)
    group = GroupAppender(stores.mine, alone, EventStoreIdempotency(stores.mine))
    group.run_batch([decision(RegisterItem(sku="A", name="a", unit_price_cents=100, on_hand=5))])
    return group, alone, appender(stores.theirs)


def test_after_its_own_append_a_batch_is_decided_without_reading_the_log(
    stores: Stores,
) -> None:
    group, _alone, theirs = ours_and_theirs(stores)
    reads = stores.log_reads
    first = group.run_batch([decision(order(("A", 1)))])
    second = group.run_batch([decision(order(("A", 1)))])
    group.close()
    theirs.close()
    assert [type(o) for o in first + second] == [tuple, tuple]
    assert stores.log_reads == reads  # the batch after the registration read nothing
    assert item(stores.mine, "A").reserved == 2


def test_a_batch_decided_on_what_another_process_changed_conflicts_and_is_decided_again(
    stores: Stores,
) -> None:
    group, alone, theirs = ours_and_theirs(stores)
    theirs.run_batch([decision(ReceiveStock(sku="A", quantity=4))])
    outcomes = group.run_batch([decision(order(("A", 3)))])  # decided on 5, appended on 9
    group.close()
    theirs.close()
    assert [type(o) for o in outcomes] == [tuple]
    assert alone.sent == 0  # decided again as a batch, after reading their receipt
    stored = item(stores.mine, "A")  # the oracle: the aggregate loaded from the store
    assert (stored.on_hand, stored.reserved, stored.version) == (9, 3, 4)


def test_a_refusal_decided_on_stale_state_is_decided_again_on_fresh_state(
    stores: Stores,
) -> None:
    group, _alone, theirs = ours_and_theirs(stores)
    theirs.run_batch([decision(ReceiveStock(sku="A", quantity=4)) for _ in range(3)])
    outcomes = group.run_batch([decision(order(("A", 10)))])  # 5 cached; 17 in the store
    group.close()
    theirs.close()
    assert [type(o) for o in outcomes] == [tuple]
    stored = item(stores.mine, "A")
    assert (stored.on_hand, stored.reserved) == (17, 10)


def test_a_command_relying_on_an_aggregate_it_does_not_append_to_reads_the_log_first(
    stores: Stores,
) -> None:
    group, _alone, theirs = ours_and_theirs(stores)
    group.run_batch([decision(RegisterItem(sku="B", name="b", unit_price_cents=100))])
    theirs.run_batch([decision(ChangePrice(sku="B", unit_price_cents=250))])

    def priced_like_b(uow: UnitOfWork) -> Answer:
        """Receives on A as many units as B costs in euros: reads B, appends to A only."""
        units = uow.item("B").unit_price_cents // 100
        uow.item("A").receive(units)
        return Answer(200, {"units": units})

    outcomes = group.run_batch([Decision(priced_like_b, CONTEXT)])
    group.close()
    theirs.close()
    assert isinstance(outcomes[0], tuple)
    assert outcomes[0][0] == Answer(200, {"units": 2})  # B's price now, not the cached 1
    assert item(stores.mine, "A").on_hand == 5 + 2
