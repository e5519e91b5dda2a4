"""`Rows.update` stages a new row by the key it is given: the row it read stays as it was
until the event's handler returns, and what a raising handler staged is forgotten."""

from __future__ import annotations

import pytest

from projections.read_model import Table
from projections.rows import Rows

ITEMS = Table("items", "id TEXT PRIMARY KEY, n INTEGER, note TEXT", key=("id",))
LOG = Table("log", "id TEXT PRIMARY KEY, n INTEGER", key=("id",), lookup=False)


@pytest.mark.parametrize("complete", [True, False])
def test_an_update_counts_once_kept_and_leaves_nothing_when_dropped(complete: bool) -> None:
    rows = Rows([ITEMS], complete=complete)
    rows.loaded("items", [{"id": "a", "n": 1, "note": "x"}])

    assert rows.update("items", "a", n=2) == {"id": "a", "n": 2, "note": "x"}
    assert rows.get("items", "a") == {"id": "a", "n": 2, "note": "x"}  # seen before keep
    rows.drop()  # the handler raised
    assert rows.get("items", "a") == {"id": "a", "n": 1, "note": "x"}

    rows.update("items", "a", n=3)
    rows.update("items", "a", note="y")  # two updates of one event build on each other
    rows.keep()
    assert rows.get("items", "a") == {"id": "a", "n": 3, "note": "y"}
    assert list(rows.final("items")) == [{"id": "a", "n": 3, "note": "y"}]


def test_an_update_of_a_missing_row_changes_nothing() -> None:
    rows = Rows([ITEMS], complete=True)
    assert rows.update("items", "nobody", n=1) is None
    rows.keep()
    assert list(rows.final("items")) == []


def test_an_update_that_changes_the_key_moves_the_row_as_a_put_would() -> None:
    rows = Rows([ITEMS], complete=False)
    rows.loaded("items", [{"id": "a", "n": 1, "note": "x"}])
    rows.update("items", "a", id="b")
    rows.keep()
    assert rows.get("items", "b") == {"id": "b", "n": 1, "note": "x"}
    assert rows.get("items", "a") == {"id": "a", "n": 1, "note": "x"}  # as `put`: the old row stays


def test_rows_never_looked_up_are_never_updated() -> None:
    rows = Rows([LOG], complete=True)
    with pytest.raises(LookupError):
        rows.update("log", "a", n=1)
