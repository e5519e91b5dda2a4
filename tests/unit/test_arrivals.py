"""The waits for orders to arrive (read_api/arrivals.py), on a fake read store: which
orders each check asks for, what a failing store does to the waits, and the Prefer
header's reading."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from projections.ports import Row
from read_api import arrivals
from read_api.arrivals import Arrivals, wait_preference


class FakeTx:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.store.asked.append(sorted(params))
        if self.store.failure is not None:
            raise self.store.failure
        return [{"order_id": p} for p in params if p in self.store.projected]


class FakeStore:
    def __init__(self) -> None:
        self.projected: set[str] = set()
        self.asked: list[list[str]] = []
        self.failure: Exception | None = None

    @contextmanager
    def read(self) -> Iterator[FakeTx]:
        yield FakeTx(self)


def arrivals_on(store: FakeStore) -> Arrivals:
    return Arrivals(store, tick_s=0.001)  # type: ignore[arg-type]


def test_each_wait_ends_when_its_own_order_arrives() -> None:
    store = FakeStore()

    async def scenario() -> tuple[bool, bool, list[list[str]]]:
        waits = arrivals_on(store)
        a = asyncio.create_task(waits.wait("a", 2))
        b = asyncio.create_task(waits.wait("b", 0.2))
        await asyncio.sleep(0.02)
        store.projected.add("a")
        return await a, await b, store.asked

    a_arrived, b_arrived, asked = asyncio.run(scenario())
    assert (a_arrived, b_arrived) == (True, False)
    assert ["a", "b"] in asked  # both checked in one statement while both waited
    assert ["b"] in asked  # and b alone once a had arrived


def test_a_failing_read_store_fails_the_waits_rather_than_answering_not_found() -> None:
    store = FakeStore()
    store.failure = ConnectionError("read store down")

    async def scenario() -> bool:
        return await arrivals_on(store).wait("a", 2)

    with pytest.raises(ConnectionError):
        asyncio.run(scenario())


def test_no_check_runs_once_nobody_waits() -> None:
    store = FakeStore()

    async def scenario() -> int:
        waits = arrivals_on(store)
        store.projected.add("a")
        assert await waits.wait("a", 1)
        await asyncio.sleep(0.05)
        checks = len(store.asked)
        await asyncio.sleep(0.05)
        assert waits.waiting == 0
        return len(store.asked) - checks

    assert asyncio.run(scenario()) == 0


def test_past_the_bound_a_read_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrivals, "MOST_WAITING", 0)

    async def scenario() -> bool:
        return await arrivals_on(FakeStore()).wait("a", 5)

    assert asyncio.run(scenario()) is False


@pytest.mark.parametrize(
    ("values", "seconds"),
    [
        (["wait=5"], 5),
        (["respond-async, wait=3"], 3),
        (["WAIT = 2"], 2),
        (['wait="4"'], 4),
        (["wait=600"], arrivals.MOST_WAIT_S),
        (["handling=lenient", "wait=1"], 1),
        (["wait=abc"], None),
        (["wait=-1"], None),
        (["wait"], None),
        ([], None),
    ],
)
def test_the_wait_preference_is_read_as_rfc_7240_writes_it(
    values: list[str], seconds: int | None
) -> None:
    assert wait_preference(values) == seconds
