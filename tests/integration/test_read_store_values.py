"""Rows hold Python values of their columns' types, a timestamp a `datetime`
(projections/rows.py); each read store writes them as its database takes them:
PostgreSQL's bulk load as binary COPY, each value as its column's type; SQLite as the
ISO text its TEXT timestamps have always held."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from infra.readstore.store import PostgresReadStore, SQLiteReadStore

# declared in one order, loaded in another: the types must follow the columns given
COLUMNS = (
    "id TEXT PRIMARY KEY, amount BIGINT NOT NULL, count INTEGER, flag BOOLEAN NOT NULL, "
    "at TIMESTAMPTZ NOT NULL, maybe_at TIMESTAMPTZ, note TEXT"
)
LOADED = ("at", "note", "id", "flag", "count", "maybe_at", "amount")
AT = datetime(2026, 11, 30, 1, 2, 3, 4, tzinfo=UTC)
ELSEWHERE = datetime(2026, 11, 29, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[PostgresReadStore]:
    store = PostgresReadStore(postgres_url, 2)
    yield store
    store.close()


@pytest.mark.postgres
def test_a_bulk_load_on_postgresql_keeps_every_value_and_type(
    postgres_store: PostgresReadStore,
) -> None:
    with postgres_store.transaction() as tx:
        tx.execute(f"CREATE TABLE loaded ({COLUMNS})")
        tx.load(
            "loaded",
            LOADED,
            [
                (AT, "naïve café ✓", "a", True, 7, ELSEWHERE, 2**40),
                (AT + timedelta(days=400), None, "b", False, None, None, -3),
            ],
        )
    with postgres_store.read() as tx:
        found = tx.all("SELECT * FROM loaded ORDER BY id")
    # by hand: the same instants (shown in the session's zone), texts, numbers and nulls
    assert [{**row, "at": row["at"].astimezone(UTC)} for row in found] == [
        {
            "id": "a",
            "amount": 2**40,
            "count": 7,
            "flag": True,
            "at": datetime(2026, 11, 30, 1, 2, 3, 4, tzinfo=UTC),
            "maybe_at": datetime(2026, 11, 30, 4, 59, 59, tzinfo=UTC),
            "note": "naïve café ✓",
        },
        {
            "id": "b",
            "amount": -3,
            "count": None,
            "flag": False,
            "at": datetime(2028, 1, 4, 1, 2, 3, 4, tzinfo=UTC),
            "maybe_at": None,
            "note": None,
        },
    ]


@pytest.mark.postgres
def test_a_bulk_load_on_postgresql_refuses_a_value_of_another_type(
    postgres_store: PostgresReadStore,
) -> None:
    """A handler writing text where a timestamp belongs fails the load, loudly."""
    with postgres_store.transaction() as tx:
        tx.execute(f"CREATE TABLE loaded ({COLUMNS})")
    with pytest.raises(Exception), postgres_store.transaction() as tx:  # noqa: B017, PT011
        tx.load("loaded", ("id", "amount", "flag", "at"), [("a", 1, True, "not a time")])
    with postgres_store.read() as tx:
        assert tx.one("SELECT count(*) AS n FROM loaded") == {"n": 0}


def test_sqlite_holds_a_timestamp_as_its_iso_text(tmp_path: Path) -> None:
    store = SQLiteReadStore(tmp_path / "reads.db")
    try:
        with store.transaction() as tx:
            tx.execute("CREATE TABLE t (id TEXT PRIMARY KEY, at TEXT, n INTEGER)")
            tx.load("t", ("id", "at", "n"), [("loaded", AT, 1)])
            tx.executemany("INSERT INTO t (id, at, n) VALUES (%s, %s, %s)", [("many", AT, 2)])
            tx.execute("INSERT INTO t (id, at, n) VALUES (%s, %s, %s)", ("one", ELSEWHERE, 3))
            tx.execute("INSERT INTO t (id, at, n) VALUES (%s, %s, %s)", ("text", "as is", 4))
        with store.read() as tx:
            found = tx.all("SELECT id, at, n FROM t ORDER BY n")
            at_one = tx.one("SELECT id FROM t WHERE at = %s", (ELSEWHERE,))
    finally:
        store.close()
    assert found == [  # the text written by hand, as `isoformat` writes it
        {"id": "loaded", "at": "2026-11-30T01:02:03.000004+00:00", "n": 1},
        {"id": "many", "at": "2026-11-30T01:02:03.000004+00:00", "n": 2},
        {"id": "one", "at": "2026-11-29T23:59:59-05:00", "n": 3},
        {"id": "text", "at": "as is", "n": 4},
    ]
    assert at_one == {"id": "one"}  # a timestamp in a query compares as that text too
