"""When the projector vacuums its claims table (projections/claims_vacuum.py): every so
many applied events, and at least every so often while events are applied, on PostgreSQL
only, and a failed vacuum never fails the batch that was applied before it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from projections.claims_vacuum import VACUUM, ClaimsVacuum
from projections.ports import Dialect


class Recorded:
    """A read store that records the statements its reads run (only reads are used)."""

    def __init__(self, dialect: Dialect, failing: bool = False) -> None:
        self.dialect = dialect
        self.failing = failing
        self.statements: list[str] = []

    @contextmanager
    def read(self) -> Iterator[Recorded]:
        yield self

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.failing:
            raise ConnectionError("server closed the connection unexpectedly")
        self.statements.append(sql)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_vacuums_once_every_so_many_events() -> None:
    store, vacuum = Recorded("postgres"), ClaimsVacuum(every=100, clock=Clock())
    for events in (40, 40, 19):  # 99
        vacuum.applied(store, events)  # type: ignore[arg-type]
    assert store.statements == []
    vacuum.applied(store, 1)  # type: ignore[arg-type]
    assert store.statements == [VACUUM]
    for _ in range(3):
        vacuum.applied(store, 150)  # type: ignore[arg-type]
    assert store.statements == [VACUUM] * 4
    assert vacuum.runs == 4


def test_sqlite_is_never_vacuumed() -> None:
    store, vacuum = Recorded("sqlite"), ClaimsVacuum(every=1, clock=Clock())
    vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert store.statements == []


def test_a_failed_vacuum_is_logged_and_tried_again_later(caplog: pytest.LogCaptureFixture) -> None:
    store, vacuum = Recorded("postgres", failing=True), ClaimsVacuum(every=10, clock=Clock())
    vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert vacuum.runs == 0
    assert "projection_pending not vacuumed" in caplog.text
    store.failing = False
    vacuum.applied(store, 9)  # type: ignore[arg-type]
    assert store.statements == []
    vacuum.applied(store, 1)  # type: ignore[arg-type]
    assert store.statements == [VACUUM]
    assert vacuum.runs == 1


def test_a_projector_applying_few_events_still_vacuums_every_so_often() -> None:
    clock = Clock()
    store, vacuum = Recorded("postgres"), ClaimsVacuum(every=100_000, after_s=1.0, clock=clock)
    for _ in range(9):  # ten events a batch, a batch every 0.1 s: 0.9 s
        clock.now += 0.1
        vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert store.statements == []
    clock.now += 0.1  # a second since the last vacuum (here: since it was made)
    vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert store.statements == [VACUUM]
    clock.now += 5.0  # the next batch after a pause of 5 s: due at once
    vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert store.statements == [VACUUM] * 2
    clock.now += 0.5
    vacuum.applied(store, 10)  # type: ignore[arg-type]
    assert store.statements == [VACUUM] * 2
