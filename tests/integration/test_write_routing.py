"""Two write processes' write sides on one PostgreSQL, each with its router on a slot of
one directory (ADR 0028): a contended SKU's commands arriving at the process that does
not own it are decided by the one that does, over the Unix socket; with the owner gone
the other decides them itself; a command sent and not answered is a transient failure.
The oracle is the event store: the item loaded fresh through its class, and the orders
stored, against counts worked out by hand."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commands.bus import Reply
from commands.ports import CommandContext, IdempotencyClaim
from domain.errors import InsufficientStock
from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide, write_side
from infra.routing.calls import Lost, serve
from infra.routing.slots import claim_slot
from infra.settings import Settings
from schemas.commands import Command, RegisterItem
from schemas.responses import ItemRegistered, OrderPlaced
from tests.integration.test_group_commit import item, order
from write_api.routing import Router

pytestmark = pytest.mark.postgres


class Two:
    """Process 0 and process 1, routing every SKU's commands (write_routing_after=0)."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        routed = settings.model_copy(update={"write_routing_after": 0, "write_workers": 2})
        self.sides = [write_side(routed), write_side(routed)]
        self.routers: list[Router] = []
        self.decided_here = Counter[int]()  # commands each process's own bus was asked
        for n, side in enumerate(self.sides):
            slot = claim_slot(directory, 2)
            assert slot is not None
            assert slot.index == n
            assert side.appender is not None
            assert side.appender.contention is not None
            self.routers.append(Router(side.bus, side.appender.contention, slot))
            self._count_decisions(n, side)

    def _count_decisions(self, n: int, side: WriteSide) -> None:
        answer = side.bus.answer_async

        async def counted(*args: Any, **kwargs: Any) -> Reply:
            self.decided_here[n] += 1
            return await answer(*args, **kwargs)

        side.bus.answer_async = counted  # type: ignore[method-assign]

    def close(self) -> None:
        for side in self.sides:
            side.close()


@pytest.fixture
def two(postgres_settings: Settings, tmp_path: Path) -> Iterator[Two]:
    processes = Two(postgres_settings, tmp_path)
    yield processes
    processes.close()


def owned_by(slot: int, prefix: str) -> str:
    """A SKU whose owner is `slot` of two."""
    return next(
        sku for n in range(100) if InventoryItem.create_id(sku := f"{prefix}-{n}").int % 2 == slot
    )


def context(n: int = 0) -> CommandContext:
    return CommandContext(correlation_id=f"c-{n}", actor="tester")


async def send(
    router: Router, command: Command, claim: IdempotencyClaim | None = None
) -> Reply | BaseException:
    model, status = (
        (ItemRegistered, 201) if isinstance(command, RegisterItem) else (OrderPlaced, 201)
    )
    try:
        return await router.answer(command, context(), model, status, claim)
    except Exception as error:
        return error


def register(sku: str, on_hand: int) -> RegisterItem:
    return RegisterItem(sku=sku, name=sku, unit_price_cents=100, on_hand=on_hand)


def test_a_contended_skus_orders_at_the_other_process_are_decided_by_its_owner(
    two: Two,
) -> None:
    sku = owned_by(1, "OWNED")
    at_zero, owner = two.routers

    async def run() -> list[Reply | BaseException]:
        await owner.start()
        try:
            assert isinstance(await send(at_zero, register(sku, 10)), Reply)
            return await asyncio.gather(*(send(at_zero, order((sku, 1))) for _ in range(20)))
        finally:
            await owner.stop()
            await at_zero.stop()

    outcomes = asyncio.run(run())

    assert Counter(type(o).__name__ for o in outcomes) == {"Reply": 10, "InsufficientStock": 10}
    refusal = next(o for o in outcomes if isinstance(o, InsufficientStock))
    assert (refusal.sku, refusal.requested) == (sku, 1)  # the error's state came across
    assert at_zero.counts["forwarded"] == 21
    assert owner.counts["received"] == 21
    assert two.decided_here == {1: 21}  # process 0's own bus decided nothing
    stored = item(two.sides[0].app, sku)
    assert (stored.on_hand, stored.reserved, len(stored.reservations)) == (10, 10, 10)


def test_with_the_owner_gone_the_other_process_decides_itself(two: Two) -> None:
    sku = owned_by(1, "GONE")
    at_zero = two.routers[0]  # process 1 never listens: its socket is not there

    async def run() -> list[Reply | BaseException]:
        try:
            assert isinstance(await send(at_zero, register(sku, 5)), Reply)
            return await asyncio.gather(*(send(at_zero, order((sku, 2))) for _ in range(4)))
        finally:
            await at_zero.stop()

    outcomes = asyncio.run(run())

    assert Counter(type(o).__name__ for o in outcomes) == {"Reply": 2, "InsufficientStock": 2}
    assert at_zero.counts == {"fallback": 5}
    assert two.decided_here == {0: 5}
    stored = item(two.sides[0].app, sku)
    assert (stored.on_hand, stored.reserved) == (5, 4)


def test_a_command_sent_to_an_owner_that_dies_unanswered_is_a_transient_failure(
    two: Two, tmp_path: Path
) -> None:
    sku = owned_by(1, "DIES")
    at_zero, owner = two.routers

    async def run() -> Reply | BaseException:
        await owner.start()
        registered = await send(at_zero, register(sku, 5))
        await owner.stop()

        async def dies(_: object) -> object:
            raise SystemError("the owner died holding the command")

        dying = await serve(tmp_path / "slot-1.sock", dies)
        try:
            assert isinstance(registered, Reply)
            return await send(at_zero, order((sku, 1)))
        finally:
            await dying.stop()
            await at_zero.stop()

    outcome = asyncio.run(run())

    assert isinstance(outcome, Lost)  # answered 503 by the API's store_unavailable handler
    assert at_zero.counts == {"forwarded": 1, "lost": 1}
    assert item(two.sides[0].app, sku).reserved == 0  # and not decided here instead


def test_an_idempotent_retry_forwarded_gets_the_first_answer(two: Two) -> None:
    sku = owned_by(1, "KEYED")
    at_zero, owner = two.routers
    claim = IdempotencyClaim("tester", "key-1", "fingerprint-1")

    async def run() -> list[Reply | BaseException]:
        await owner.start()
        try:
            assert isinstance(await send(at_zero, register(sku, 5)), Reply)
            first = await send(at_zero, order((sku, 1)), claim)
            again = await asyncio.gather(
                send(at_zero, order((sku, 1)), claim), send(owner, order((sku, 1)), claim)
            )
            return [first, *again]
        finally:
            await owner.stop()
            await at_zero.stop()

    first, forwarded, at_owner = asyncio.run(run())

    assert isinstance(first, Reply)
    assert not first.replayed
    for retry in (forwarded, at_owner):
        assert isinstance(retry, Reply)
        assert retry.replayed
        assert (retry.answer, retry.position) == (first.answer, first.position)
    stored = item(two.sides[0].app, sku)
    assert (stored.reserved, len(stored.reservations)) == (1, 1)
    assert at_zero.counts["forwarded"] == 3


def test_an_owner_stopping_answers_the_commands_it_is_deciding(two: Two) -> None:
    sku = owned_by(1, "STOPS")
    at_zero, owner = two.routers

    async def run() -> Reply | BaseException:
        await owner.start()
        try:
            assert isinstance(await send(at_zero, register(sku, 5)), Reply)
            placing = asyncio.create_task(send(at_zero, order((sku, 1))))
            while owner.counts["received"] < 2:  # the order is being decided by the owner
                await asyncio.sleep(0)
            await owner.stop()
            return await placing
        finally:
            await at_zero.stop()

    outcome = asyncio.run(run())

    assert isinstance(outcome, Reply)
    assert item(two.sides[0].app, sku).reserved == 1
