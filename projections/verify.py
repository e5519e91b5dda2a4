"""Checked rebuilds: a projection folded afresh from the log, compared with the live one.

The comparison runs inside the rebuild's last transaction, which holds the live
projection's state row (so the live projector waits) and has brought the shadow tables to
the head. The live tables are brought to the same head in that transaction, by the same
runner the projector uses, so both sides reflect the same events. `verify` is a rebuild
that never swaps: its transaction rolls back, the live catch-up with it, and the shadow
tables are dropped. See docs/adr/0019."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.ports import EventSource, ReadStore, Row, Tx
from projections.projector import SHADOW, Progress, RebuildReport
from projections.read_model import SqlReadModel, Table
from projections.rebuild import SwapRefused, discard_shadow, rebuild_all
from projections.sql_projector import SqlProjector, load_watermark

SHOWN = 5  # differing keys shown per table
PAGE = 10_000  # rows read at a time
_TABLE_KEY = re.compile(r"PRIMARY KEY\s*\(([^)]*)\)", re.IGNORECASE)
_COLUMN_KEY = re.compile(r"(?:^|,)\s*(\w+)\s[^,]*\bPRIMARY KEY\b", re.IGNORECASE)


def key_columns(table: Table) -> tuple[str, ...]:
    """The primary key, as the table's declaration names it."""
    if found := _TABLE_KEY.search(table.columns):
        return tuple(column.strip() for column in found.group(1).split(","))
    if found := _COLUMN_KEY.search(table.columns):
        return (found.group(1),)
    raise ValueError(f"table {table.name} declares no primary key")


@dataclass(frozen=True)
class Mismatch:
    """One key whose rows differ; None for the side that has no row with this key."""

    key: dict[str, Any]
    live: Row | None
    rebuilt: Row | None


@dataclass(frozen=True)
class TableComparison:
    table: str
    live_rows: int
    rebuilt_rows: int
    live_digest: str
    rebuilt_digest: str
    differing: int  # keys whose rows differ or exist on one side only
    first: tuple[Mismatch, ...]  # the first few of them, in key order

    @property
    def equal(self) -> bool:
        return self.differing == 0


@dataclass(frozen=True)
class Comparison:
    projection: str
    position: int  # both sides reflect every event up to here
    tables: tuple[TableComparison, ...]

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)


@dataclass
class _Side:
    """One table read in key order: its row count, digest, and a fingerprint per key."""

    rows: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    by_key: dict[tuple[Any, ...], int] = field(default_factory=dict)


def _scan(tx: Tx, physical: str, key: tuple[str, ...]) -> _Side:
    """Pages through the table by key (a page in memory at a time, not the table)."""
    side = _Side()
    columns, marks = ", ".join(key), ", ".join(["%s"] * len(key))
    after: tuple[Any, ...] | None = None
    while True:
        where = f"WHERE ({columns}) > ({marks}) " if after is not None else ""
        page = tx.all(
            f"SELECT * FROM {physical} {where}ORDER BY {columns} LIMIT {PAGE}", after or ()
        )
        for row in page:
            text = repr(tuple(row.values())).encode()
            side.digest.update(text + b"\n")
            side.by_key[tuple(row[c] for c in key)] = hash(text)
        side.rows += len(page)
        if len(page) < PAGE:
            return side
        after = tuple(page[-1][c] for c in key)


def _row(tx: Tx, physical: str, key: tuple[str, ...], values: tuple[Any, ...]) -> Row | None:
    where = " AND ".join(f"{c} = %s" for c in key)
    return tx.one(f"SELECT * FROM {physical} WHERE {where}", values)


def compare_table(tx: Tx, table: Table, suffix: str) -> TableComparison:
    """The live table against its shadow (`table` + `suffix`), by primary key. Both come
    from one table definition, so equal rows have equal values in the same columns."""
    key = key_columns(table)
    live, rebuilt = _scan(tx, table.name, key), _scan(tx, table.name + suffix, key)
    differing = sorted(
        (
            k
            for k in live.by_key.keys() | rebuilt.by_key.keys()
            if live.by_key.get(k) != rebuilt.by_key.get(k)
        ),
        key=lambda k: tuple(str(v) for v in k),
    )
    first = tuple(
        Mismatch(
            dict(zip(key, k, strict=True)),
            _row(tx, table.name, key, k),
            _row(tx, table.name + suffix, key, k),
        )
        for k in differing[:SHOWN]
    )
    return TableComparison(
        table.name,
        live.rows,
        rebuilt.rows,
        live.digest.hexdigest()[:16],
        rebuilt.digest.hexdigest()[:16],
        len(differing),
        first,
    )


def compare_with_live(
    tx: Tx,
    projection: SqlReadModel,
    store: ReadStore,
    events: EventSource,
    suffix: str,
    position: int,
) -> Comparison:
    """Brings the live tables to `position` (where the shadow stands) in `tx`, which must
    hold the live state row, then compares every table."""
    live = SqlProjector(store, [projection])
    state = load_watermark(tx, projection.name)
    for envelopes in events.iterate(state.position, until=position):
        live.apply_in(tx, envelopes)  # skips what the live projector already applied
    tables = tuple(compare_table(tx, table, suffix) for table in projection.tables)
    return Comparison(projection.name, position, tables)


class LiveCheck:
    """The hook `rebuild_all` calls before its swap, once per projection: compares, and
    says whether to swap."""

    def __init__(self, store: ReadStore, events: EventSource, *, swap: bool, force: bool) -> None:
        self.store, self.events = store, events
        self.swap, self.force = swap, force
        self.comparisons: dict[str, Comparison] = {}

    def __call__(self, tx: Tx, projection: SqlReadModel, position: int) -> bool:
        comparison = compare_with_live(tx, projection, self.store, self.events, SHADOW, position)
        self.comparisons[projection.name] = comparison
        return self.swap and (comparison.equal or self.force)


@dataclass(frozen=True)
class Checked:
    report: RebuildReport
    comparison: Comparison
    swapped: bool


def checked_rebuild_all(
    projections: Sequence[SqlReadModel],
    store: ReadStore,
    events: EventSource,
    *,
    swap: bool,
    force: bool = False,
    progress: Progress | None = None,
) -> list[Checked]:
    """One pass over the log rebuilds them all, each compared with its live tables before
    the swap; they are swapped together if `swap` and every one is equal (or `force`),
    else none is. With swap=False this is `projections verify`: nothing changes."""
    check = LiveCheck(store, events, swap=swap, force=force)
    try:
        reports, swapped = rebuild_all(projections, store, events, progress, check=check), True
    except SwapRefused as refused:
        for projection in projections:
            discard_shadow(store, projection)
        reports, swapped = refused.reports, False
    return [Checked(r, check.comparisons[r.projection], swapped) for r in reports]


def checked_rebuild(
    projection: SqlReadModel,
    store: ReadStore,
    events: EventSource,
    *,
    swap: bool,
    force: bool = False,
    progress: Progress | None = None,
) -> Checked:
    """One projection's checked rebuild (see checked_rebuild_all)."""
    [checked] = checked_rebuild_all(
        [projection], store, events, swap=swap, force=force, progress=progress
    )
    return checked


def verify(
    projection: SqlReadModel,
    store: ReadStore,
    events: EventSource,
    progress: Progress | None = None,
) -> Comparison:
    return checked_rebuild(projection, store, events, swap=False, progress=progress).comparison
