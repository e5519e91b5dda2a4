"""A batch the database refuses is bisected down to the event that fails alone; a dead
connection is not mistaken for a refusal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from projections.batch import apply_batch
from projections.ports import Dialect, Row
from projections.read_model import ReadModelTx, SqlReadModel, Table
from projections.rows import Rows
from schemas.envelope import Envelope

notes = SqlReadModel(
    "notes", tables=(Table("notes", "id TEXT, v TEXT", key=("id",), lookup=False),)
)


@notes.on("order.noted")
def noted(e: Envelope, db: Rows) -> None:
    db.put("notes", {"id": f"{e.aggregate_id}-{e.version}", "v": e.data["v"]})


class RefusingTx:
    """Refuses any write holding v = 'bad'; with `dead`, every statement fails."""

    dialect: Dialect = "sqlite"

    def __init__(self, dead: bool = False) -> None:
        self.dead = dead
        self.written: list[Any] = []
        self.savepoints = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.dead and "ROLLBACK" in sql:
            raise ConnectionError("server closed the connection unexpectedly")
        self.savepoints += sql.startswith("SAVEPOINT")

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dead or any("bad" in row for row in rows):
            raise RuntimeError("refused by a constraint")
        self.written.extend(rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return []

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        raise AssertionError("batches never bulk-load")

    def all_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        return [[] for _ in statements]

    def pipeline(self) -> AbstractContextManager[None]:
        return nullcontext()


def event(aggregate: UUID, version: int, position: int, v: str) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        type="order.noted",
        aggregate_type="order",
        aggregate_id=aggregate,
        version=version,
        position=position,
        previous_position=position - 1,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        schema_version=1,
        data={"v": v},
    )


def test_the_refused_event_is_found_and_its_aggregate_held() -> None:
    victim, others = uuid4(), [uuid4() for _ in range(15)]
    events = [event(a, 1, n + 1, "ok") for n, a in enumerate(others[:8])]
    events += [event(victim, 1, 9, "bad"), event(victim, 2, 10, "ok")]
    events += [event(a, 1, n + 11, "ok") for n, a in enumerate(others[8:])]
    tx = RefusingTx()
    outcome = apply_batch(ReadModelTx(tx, {"notes": "notes"}), notes, events, set())
    assert [(e.position, "refused" in error) for e, error in outcome.failed] == [(9, True)]
    assert [e.position for e in outcome.held] == [10]
    assert sorted(e.position for e in outcome.applied) == [
        n for n in range(1, 18) if n not in (9, 10)
    ]
    assert len(tx.written) == 15  # every other event's row, once
    assert tx.savepoints < len(events)  # bisection, not a savepoint per event


def test_a_dead_connection_escapes_instead_of_being_parked() -> None:
    events = [event(uuid4(), 1, n, "ok") for n in range(1, 9)]
    with pytest.raises(ConnectionError):
        apply_batch(ReadModelTx(RefusingTx(dead=True), {"notes": "notes"}), notes, events, set())
