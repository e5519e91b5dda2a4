"""The waits of read_api/arrivals.py with a fake look-up: which keys each look asks for,
what each waiter is handed, what a failing look does to the waits, and the Prefer
header's reading."""

from __future__ import annotations

import asyncio

import pytest

from read_api import arrivals
from read_api.arrivals import Arrivals, wait_preference


class FakeReadModel:
    """Rows that appear when the test says so; every look it is asked, recorded."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}
        self.asked: list[list[str]] = []
        self.failure: Exception | None = None

    def look(self, keys: list[str]) -> dict[str, str]:
        self.asked.append(sorted(keys))
        if self.failure is not None:
            raise self.failure
        return {key: self.rows[key] for key in keys if key in self.rows}


def arrivals_on(model: FakeReadModel) -> Arrivals[str]:
    return Arrivals(model.look, tick_s=0.001)


def test_each_wait_is_handed_its_own_row_when_it_arrives() -> None:
    model = FakeReadModel()

    async def scenario() -> tuple[str | None, str | None, str | None]:
        waits = arrivals_on(model)
        a1 = asyncio.create_task(waits.wait("a", 2))
        a2 = asyncio.create_task(waits.wait("a", 2))
        b = asyncio.create_task(waits.wait("b", 0.2))
        await asyncio.sleep(0.02)
        model.rows["a"] = "row of a"
        return await a1, await a2, await b

    assert asyncio.run(scenario()) == ("row of a", "row of a", None)
    assert ["a", "b"] in model.asked  # both looked for in one look while both waited
    assert ["b"] in model.asked  # and b alone once a had arrived


def test_a_failing_look_fails_the_waits_rather_than_answering_not_found() -> None:
    model = FakeReadModel()
    model.failure = ConnectionError("read store down")

    async def scenario() -> str | None:
        return await arrivals_on(model).wait("a", 2)

    with pytest.raises(ConnectionError):
        asyncio.run(scenario())


def test_no_look_runs_once_nobody_waits() -> None:
    model = FakeReadModel()

    async def scenario() -> int:
        waits = arrivals_on(model)
        model.rows["a"] = "row of a"
        assert await waits.wait("a", 1) == "row of a"
        await asyncio.sleep(0.05)
        looks = len(model.asked)
        await asyncio.sleep(0.05)
        assert waits.waiting == 0
        return len(model.asked) - looks

    assert asyncio.run(scenario()) == 0


def test_past_the_bound_a_read_does_not_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrivals, "MOST_WAITING", 0)
    model = FakeReadModel()
    model.rows["a"] = "row of a"

    async def scenario() -> str | None:
        return await arrivals_on(model).wait("a", 5)

    assert asyncio.run(scenario()) is None
    assert model.asked == []


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
