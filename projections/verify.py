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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infra.event_log import EventLog
from infra.read_store import ReadStore, Row, Tx
from projections.projection import Projection, Table
from projections.rebuild import (
    SHADOW,
    Progress,
    RebuildReport,
    SwapRefused,
    discard_shadow,
    rebuild,
)
from projections.runner import ProjectionRunner, load_watermark

SHOWN = 5  # differing keys shown per table
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


def _digest(rows: Iterable[tuple[Any, ...]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(row).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def compare_table(tx: Tx, table: Table, suffix: str) -> TableComparison:
    """The live table against its shadow (`table` + `suffix`), by primary key. Both come
    from one table definition, so equal rows have equal values in the same columns."""
    key = key_columns(table)
    order = ", ".join(key)
    live = tx.all(f"SELECT * FROM {table.name} ORDER BY {order}")
    rebuilt = tx.all(f"SELECT * FROM {table.name}{suffix} ORDER BY {order}")
    live_by_key = {tuple(r[c] for c in key): r for r in live}
    rebuilt_by_key = {tuple(r[c] for c in key): r for r in rebuilt}
    differing = sorted(
        (
            k
            for k in live_by_key.keys() | rebuilt_by_key.keys()
            if live_by_key.get(k) != rebuilt_by_key.get(k)
        ),
        key=lambda k: tuple(str(v) for v in k),
    )
    first = tuple(
        Mismatch(dict(zip(key, k, strict=True)), live_by_key.get(k), rebuilt_by_key.get(k))
        for k in differing[:SHOWN]
    )
    return TableComparison(
        table.name,
        len(live),
        len(rebuilt),
        _digest(tuple(r.values()) for r in live),
        _digest(tuple(r.values()) for r in rebuilt),
        len(differing),
        first,
    )


def compare_with_live(
    tx: Tx, projection: Projection, store: ReadStore, events: EventLog, suffix: str, position: int
) -> Comparison:
    """Brings the live tables to `position` (where the shadow stands) in `tx`, which must
    hold the live state row, then compares every table."""
    live = ProjectionRunner(store, [projection])
    state = load_watermark(tx, projection.name)
    for envelopes in events.iterate(state.position, until=position):
        live.apply_in(tx, envelopes)  # skips what the live projector already applied
    tables = tuple(compare_table(tx, table, suffix) for table in projection.tables)
    return Comparison(projection.name, position, tables)


class LiveCheck:
    """The hook `rebuild` calls before its swap: compares, and says whether to swap."""

    def __init__(self, store: ReadStore, events: EventLog, *, swap: bool, force: bool) -> None:
        self.store, self.events = store, events
        self.swap, self.force = swap, force
        self.comparison: Comparison | None = None

    def __call__(self, tx: Tx, projection: Projection, position: int) -> bool:
        self.comparison = compare_with_live(
            tx, projection, self.store, self.events, SHADOW, position
        )
        return self.swap and (self.comparison.equal or self.force)


@dataclass(frozen=True)
class Checked:
    report: RebuildReport
    comparison: Comparison
    swapped: bool


def checked_rebuild(
    projection: Projection,
    store: ReadStore,
    events: EventLog,
    *,
    swap: bool,
    force: bool = False,
    progress: Progress | None = None,
) -> Checked:
    """Rebuild and compare before the swap, which happens only if `swap` and the two are
    equal (or `force`). With swap=False this is `projections verify`: nothing changes."""
    check = LiveCheck(store, events, swap=swap, force=force)
    try:
        report, swapped = rebuild(projection, store, events, progress, check=check), True
    except SwapRefused as refused:
        discard_shadow(store, projection)
        report, swapped = refused.report, False
    assert check.comparison is not None
    return Checked(report, check.comparison, swapped)


def verify(
    projection: Projection, store: ReadStore, events: EventLog, progress: Progress | None = None
) -> Comparison:
    return checked_rebuild(projection, store, events, swap=False, progress=progress).comparison
