"""Rebuild projections from the event store into shadow tables, then swap atomically.

One pass over the log feeds every projection being rebuilt. The events are folded in
memory (projections/rows.py), so the only memory that grows is the read models' own rows;
the shadow tables are then bulk-loaded (COPY on PostgreSQL) and indexed after the load.
The live tables keep serving (and the live projector keeps applying) until the swap. The
swap locks the live projections' state rows, applies the last events that arrived in the
meantime, renames the tables and hands the shadow's watermark to the live name, all in
one transaction: readers see the old tables or the new ones, never a mix."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from projections import claims, dead_letters
from projections.batch import Outcome, fold
from projections.collector import collection_paused
from projections.ports import EventSource, ReadStore, SplittableEventSource, Tx
from projections.projector import SHADOW, Progress, RebuildReport
from projections.read_model import SqlReadModel
from projections.rows import Rows
from projections.split_fold import MINE, Helper, load_shadow, splittable
from projections.sql_projector import (
    SqlProjector,
    create_state_tables,
    load_watermark,
    save_watermark,
)
from schemas.envelope import Envelope

RETIRED = "__retired"

# Called in the swap's transaction, the shadow caught up to `position`: whether to swap.
Check = Callable[[Tx, SqlReadModel, int], bool]


class SwapRefused(Exception):
    """A check said no for one of the projections rebuilt together: the swap's transaction
    rolled back, none of them was swapped, the shadow tables remain (for discard_shadow)
    and the live projections are as they were. One report per projection rebuilt."""

    def __init__(self, reports: list[RebuildReport]) -> None:
        super().__init__(", ".join(f"{r.projection}: not swapped" for r in reports))
        self.reports = reports


def _drop(tx: Tx, projection: SqlReadModel, suffix: str) -> None:
    for physical in projection.table_names(suffix).values():
        tx.execute(f"DROP TABLE IF EXISTS {physical}")


def rebuild(
    projection: SqlReadModel,
    store: ReadStore,
    events: EventSource,
    progress: Progress | None = None,
    batch: int = 2000,
    check: Check | None = None,
) -> RebuildReport:
    return rebuild_all([projection], store, events, progress, batch, check)[0]


def rebuild_all(
    projections: Sequence[SqlReadModel],
    store: ReadStore,
    events: EventSource,
    progress: Progress | None = None,
    batch: int = 2000,
    check: Check | None = None,
    split: bool = True,
) -> list[RebuildReport]:
    """`split`: when the log and the machine allow it, two processes fold the pass
    (projections/split_fold.py); otherwise this one alone."""
    shadow = SqlProjector(store, projections, suffix=SHADOW)
    shares = None
    if split and splittable(events, store):  # both shares read up to the head as it is now
        assert isinstance(events, SplittableEventSource)
        # asked of the event store first: meanwhile a read store opened just before (the
        # CLI's, the bench's) finishes connecting, instead of the setup waiting for it
        shares = events.shares(events.head())
    # The fixed statements of a rebuild (a few dozen: DDL, state) go out pipelined where
    # none needs an answer, not a round trip each (measured: a tenth of a small rebuild).
    with store.transaction() as tx, tx.pipeline():
        create_state_tables(tx)  # on a first run
        for projection in projections:
            name = shadow.state_name(projection)
            _drop(tx, projection, SHADOW)
            _forget(tx, name)
            tx.execute("DELETE FROM dead_letters WHERE projection = %s", (name,))
            # without indexes: filled in bulk, then indexed (faster than keeping indexes
            # up to date row by row); committed now, so that a helper can load its share
            projection.create_tables(tx, tx.dialect, SHADOW, indexes=False, dropped=True)

    helper = None if shares is None else Helper(projections, events, store, shares, batch)
    try:
        folds, parked, reached, read = _fold(projections, events, batch, progress, helper)
        with store.transaction() as tx:
            for projection in projections:
                load_shadow(tx, projection, folds.pop(projection.name))
            if helper is not None:  # its rows are committed once it answers
                theirs, their_events = helper.loaded()
                parked = _merged(parked, theirs)
                reached, read = helper.until, read + their_events
            with tx.pipeline():
                for projection in projections:
                    _complete(tx, shadow, projection, reached)
                    _park(tx, shadow.state_name(projection), parked[projection.name])
    finally:
        if helper is not None:
            helper.close()

    with store.transaction() as tx:
        before = {p.name: load_watermark(tx, p.name) for p in projections}  # holds projectors off
        for envelopes in events.iterate(reached, batch=batch):  # what came in meanwhile
            shadow.apply_in(tx, envelopes)
            reached, read = envelopes[-1].position, read + len(envelopes)
        shadow.compact_in(tx)
        rebuilt = {p.name: load_watermark(tx, shadow.state_name(p)) for p in projections}
        if check is not None:  # every projection checked, so each comparison is made
            approved = [check(tx, p, rebuilt[p.name].position) for p in projections]
            if not all(approved):
                raise SwapRefused(
                    [RebuildReport(p.name, rebuilt[p.name].position, read) for p in projections]
                )
            before = {p.name: load_watermark(tx, p.name) for p in projections}  # moved by it
        reports = []
        with tx.pipeline():
            for projection in projections:
                live_state = before[projection.name]
                _swap(tx, projection)
                save_watermark(tx, projection.name, live_state, rebuilt[projection.name], None)
                # the old tables' dead letters go with them; the rebuild's own become the live
                tx.execute("DELETE FROM dead_letters WHERE projection = %s", (projection.name,))
                tx.execute(
                    "UPDATE dead_letters SET projection = %s WHERE projection = %s",
                    (projection.name, shadow.state_name(projection)),
                )
                _forget(tx, shadow.state_name(projection))
                reports.append(
                    RebuildReport(projection.name, rebuilt[projection.name].position, read)
                )
    if progress:
        progress(reached, reached)
    return reports


def _fold(
    projections: Sequence[SqlReadModel],
    events: EventSource,
    batch: int,
    progress: Progress | None,
    helper: Helper | None,
) -> tuple[dict[str, Rows], dict[str, Outcome], int, int]:
    """One pass over the log into every projection's rows in memory (this process's share
    of them when a helper folds the rest): (rows, dead letters, last position, events)."""
    folds = {p.name: Rows(p.tables, complete=True) for p in projections}
    blocked: dict[str, set[str]] = {p.name: set() for p in projections}
    parked = {p.name: Outcome() for p in projections}
    reached, read = 0, 0
    with collection_paused():  # the fold makes no cycles; measured: a third of a log read
        for envelopes in _batches(events, batch, helper):
            for projection in projections:
                name = projection.name
                outcome = fold(projection, folds[name], envelopes, blocked[name])
                parked[name].failed += outcome.failed
                parked[name].held += outcome.held
            reached, read = envelopes[-1].position, read + len(envelopes)
            if progress:
                progress(reached, events.head())
    return folds, parked, reached, read


def _batches(events: EventSource, batch: int, helper: Helper | None) -> Iterator[list[Envelope]]:
    """This process's envelopes, a batch at a time: the whole log, or its share of it when
    a helper reads the other."""
    if helper is None:
        yield from events.scan(0, batch=batch)
        return
    assert isinstance(events, SplittableEventSource)
    yield from events.share_scan(MINE, helper.shares, batch=batch)


def _merged(ours: dict[str, Outcome], theirs: dict[str, Outcome]) -> dict[str, Outcome]:
    """Both processes' dead letters, by projection, in log order."""
    return {
        name: Outcome(
            failed=sorted(ours[name].failed + theirs[name].failed, key=lambda f: f[0].position),
            held=sorted(ours[name].held + theirs[name].held, key=lambda e: e.position),
        )
        for name in ours
    }


def _complete(tx: Tx, shadow: SqlProjector, projection: SqlReadModel, reached: int) -> None:
    """The loaded shadow tables indexed and their state at `reached`."""
    projection.create_indexes(tx, SHADOW)
    name = shadow.state_name(projection)
    claims.ensure_state(tx, name)
    # the fold read the log from its start without a gap: everything up to here is in
    tx.execute("UPDATE projection_state SET watermark = %s WHERE name = %s", (reached, name))


def _park(tx: Tx, state_name: str, parked: Outcome) -> None:
    for envelope, error in parked.failed:
        dead_letters.park(tx, state_name, envelope, "failed", error)
    for envelope in parked.held:
        dead_letters.park(tx, state_name, envelope, "held", dead_letters.HELD)


def discard_shadow(store: ReadStore, projection: SqlReadModel) -> None:
    """Drops a rebuild's shadow tables and forgets their state and dead letters."""
    state_name = projection.name + SHADOW
    with store.transaction() as tx:
        _drop(tx, projection, SHADOW)
        _forget(tx, state_name)
        tx.execute("DELETE FROM dead_letters WHERE projection = %s", (state_name,))


def _forget(tx: Tx, state_name: str) -> None:
    tx.execute("DELETE FROM projection_state WHERE name = %s", (state_name,))
    tx.execute("DELETE FROM projection_pending WHERE name = %s", (state_name,))


def _swap(tx: Tx, projection: SqlReadModel) -> None:
    live = projection.table_names()
    for name, physical in live.items():
        tx.execute(f"ALTER TABLE {physical} RENAME TO {name}{RETIRED}")
        tx.execute(f"ALTER TABLE {name}{SHADOW} RENAME TO {physical}")
    _drop(tx, projection, RETIRED)
