"""A projection's rows in memory while events are folded into them.

Handlers read and write rows here, never SQL: the runner loads the rows a batch touches
with one query per table, folds every event in memory, and writes the result back with
one bulk statement per table (projections/batch.py). An event's changes are staged until
its handler returns, so a handler that raises leaves nothing behind, with no savepoint.

Values are Python values of their columns' types, a timestamp a `datetime` (an event's
`occurred_at` as it is): the read store turns them into what its database takes
(infra/readstore/store.py), which is cheaper than text made per event by each handler."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from projections.read_model import Table

Row = dict[str, Any]
Key = tuple[Any, ...]


class Rows:
    """Rows by table and key. A key never loaded counts as absent: the runner loads every
    row the batch's aggregates own before folding, and a rebuild starts from nothing."""

    def __init__(self, tables: Iterable[Table], complete: bool = False) -> None:
        """`complete`: these are all the rows there are (a rebuild from nothing), so a
        deleted row is forgotten and nothing is tracked for writing back."""
        self.complete = complete
        self.tables = {t.name: t for t in tables}
        self._known: dict[str, dict[Key, Row | None]] = {name: {} for name in self.tables}
        self._dirty: dict[str, set[Key]] = {name: set() for name in self.tables}
        self._staged: dict[tuple[str, Key], Row | None] = {}
        self._key_of = {name: _key_getter(t.key) for name, t in self.tables.items()}
        # tables whose rows `update` may stage under the key it is given (a one-column key)
        self._by_one_column = {name for name, t in self.tables.items() if len(t.key) == 1}

    def key(self, table: str, row: Row) -> Key:
        return self._key_of[table](row)

    def get(self, table: str, *key: Any) -> Row | None:
        """A copy: change it, then `put` it back."""
        if not self.tables[table].lookup:
            raise LookupError(f"{table} rows are written, never looked up")
        staged = (table, key)
        row = self._staged[staged] if staged in self._staged else self._known[table].get(key)
        return dict(row) if row is not None else None

    def put(self, table: str, row: Row) -> None:
        self._staged[(table, self.key(table, row))] = row

    def insert(self, table: str, row: Row) -> None:
        """Like SQL's INSERT: a row that is there already is an error (checked where rows
        are looked up; elsewhere the database's key decides)."""
        key = self.key(table, row)
        if self.tables[table].lookup and self.get(table, *key) is not None:
            raise ValueError(f"{table} already has a row for {key}")
        self.put(table, row)

    def update(self, table: str, key: Any, **changes: Any) -> Row | None:
        """Like SQL's UPDATE by key: nothing when the row is not there. Folds call it for
        most events: one new row, not a copy changed and its key taken again."""
        if table not in self._by_one_column or self.tables[table].key[0] in changes:
            row = self.get(table, key)  # a key changed, or a key of several columns
            if row is not None:
                row.update(changes)
                self.put(table, row)
            return row
        if not self.tables[table].lookup:
            raise LookupError(f"{table} rows are written, never looked up")
        staged = (table, (key,))
        row = self._staged[staged] if staged in self._staged else self._known[table].get((key,))
        if row is None:
            return None
        changed = self._staged[staged] = {**row, **changes}
        return changed

    def delete(self, table: str, *key: Any) -> None:
        self._staged[(table, key)] = None

    def keep(self) -> None:
        """The event's handler returned: its changes count."""
        for (table, key), row in self._staged.items():
            if not self.complete:
                self._known[table][key] = row
                self._dirty[table].add(key)
            elif row is None:
                self._known[table].pop(key, None)
            else:
                self._known[table][key] = row
        self._staged.clear()

    def drop(self) -> None:
        """The event's handler raised: forget what it staged."""
        self._staged.clear()

    def loaded(self, table: str, rows: Iterable[Row]) -> None:
        known = self._known[table]
        for row in rows:
            known[self.key(table, row)] = row

    def changes(self, table: str) -> tuple[list[Row], list[Key]]:
        """(rows to upsert, keys to delete), in key order so that two writers lock rows
        in the same order and never deadlock."""
        upserts: list[Row] = []
        deletes: list[Key] = []
        known = self._known[table]
        for key in sorted(self._dirty[table], key=lambda k: [str(part) for part in k]):
            row = known[key]
            if row is None:
                deletes.append(key)
            else:
                upserts.append(row)
        return upserts, deletes

    def final(self, table: str) -> Iterable[Row]:
        """Every row there is, for a rebuild that started from nothing."""
        return (row for row in self._known[table].values() if row is not None)

    def values(self, table: str) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]] | None:
        """Every row there is as a tuple of the columns named (those of the first row),
        for a bulk load; None when the table has no rows."""
        final = iter(self.final(table))
        first = next(final, None)
        if first is None:
            return None
        columns = tuple(first)
        return columns, (tuple(map(row.get, columns)) for row in chain((first,), final))

    def clear(self) -> None:
        for known in self._known.values():
            known.clear()


def _key_getter(columns: tuple[str, ...]) -> Callable[[Row], Key]:
    """A row's key as a tuple, taken in C: every put and insert asks for it."""
    if len(columns) == 1:
        (column,) = columns
        return lambda row: (row[column],)
    return itemgetter(*columns)
