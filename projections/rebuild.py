"""Rebuild a projection from the event store into shadow tables, then swap atomically.

The live tables keep serving (and the live projector keeps applying) until the swap. The
swap locks the live projection's state row, applies the last events that arrived in the
meantime, renames the tables and hands the shadow's watermark to the live name, all in
one transaction: readers see the old tables or the new ones, never a mix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.event_log import EventLog
from infra.read_store import ReadStore, Tx
from projections.projection import Projection
from projections.runner import ProjectionRunner, load_watermark, save_watermark

SHADOW = "__rebuild"
RETIRED = "__retired"

Progress = Callable[[int, int], None]  # (position reached, head)
# Called in the swap's transaction, the shadow caught up to `position`: whether to swap.
Check = Callable[[Tx, Projection, int], bool]


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    position: int
    events: int


class SwapRefused(Exception):
    """A check said no: the swap's transaction rolled back, the shadow tables remain (for
    discard_shadow) and the live projection is as it was."""

    def __init__(self, report: RebuildReport) -> None:
        super().__init__(f"{report.projection}: not swapped")
        self.report = report


def _drop(tx: Tx, projection: Projection, suffix: str) -> None:
    for physical in projection.table_names(suffix).values():
        tx.execute(f"DROP TABLE IF EXISTS {physical}")


def rebuild(
    projection: Projection,
    store: ReadStore,
    events: EventLog,
    progress: Progress | None = None,
    batch: int = 2000,
    check: Check | None = None,
) -> RebuildReport:
    shadow = ProjectionRunner(store, [projection], suffix=SHADOW)
    shadow.setup()  # the state tables, on a first run
    with store.transaction() as tx:
        _drop(tx, projection, SHADOW)
        _forget(tx, shadow.state_name(projection))
        tx.execute(
            "DELETE FROM dead_letters WHERE projection = %s", (shadow.state_name(projection),)
        )
    shadow.setup()

    reached, read = 0, 0
    for envelopes in events.iterate(0, batch=batch):
        shadow.apply(envelopes)
        reached, read = envelopes[-1].position, read + len(envelopes)
        if progress:
            progress(reached, events.head())

    with store.transaction() as tx:
        live_state = load_watermark(tx, projection.name)  # holds the live projector off
        for envelopes in events.iterate(reached, batch=batch):  # what came in meanwhile
            shadow.apply_in(tx, envelopes)
            reached, read = envelopes[-1].position, read + len(envelopes)
        rebuilt = load_watermark(tx, shadow.state_name(projection))
        if check is not None:
            if not check(tx, projection, rebuilt.position):
                raise SwapRefused(RebuildReport(projection.name, rebuilt.position, read))
            live_state = load_watermark(tx, projection.name)  # the check may have moved it
        _swap(tx, projection)
        save_watermark(tx, projection.name, live_state, rebuilt, None)
        # the old tables' dead letters go with them; the rebuild's own become the live ones
        tx.execute("DELETE FROM dead_letters WHERE projection = %s", (projection.name,))
        tx.execute(
            "UPDATE dead_letters SET projection = %s WHERE projection = %s",
            (projection.name, shadow.state_name(projection)),
        )
        _forget(tx, shadow.state_name(projection))
    if progress:
        progress(reached, reached)
    return RebuildReport(projection.name, rebuilt.position, read)


def discard_shadow(store: ReadStore, projection: Projection) -> None:
    """Drops a rebuild's shadow tables and forgets their state and dead letters."""
    state_name = projection.name + SHADOW
    with store.transaction() as tx:
        _drop(tx, projection, SHADOW)
        _forget(tx, state_name)
        tx.execute("DELETE FROM dead_letters WHERE projection = %s", (state_name,))


def _forget(tx: Tx, state_name: str) -> None:
    tx.execute("DELETE FROM projection_state WHERE name = %s", (state_name,))
    tx.execute("DELETE FROM projection_pending WHERE name = %s", (state_name,))


def _swap(tx: Tx, projection: Projection) -> None:
    live = projection.table_names()
    for name, physical in live.items():
        tx.execute(f"ALTER TABLE {physical} RENAME TO {name}{RETIRED}")
        tx.execute(f"ALTER TABLE {name}{SHADOW} RENAME TO {physical}")
    _drop(tx, projection, RETIRED)
