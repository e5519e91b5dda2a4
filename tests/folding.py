"""The reference fold: the event store folded, in order, into fresh tables beside the live
ones, compared row for row. It checks delivery (order, redelivery, holes, crashes), not the
handlers, which it shares with the code under test: tests/oracle.py checks those against
the domain aggregates."""

from __future__ import annotations

from infra.eventstore.event_log import EventLog
from projections.ports import ReadStore, Row
from projections.read_model import SqlReadModel
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector

REFERENCE = "__reference"


def rows(store: ReadStore, table: str) -> list[Row]:
    with store.read() as tx:
        found = tx.all(f"SELECT * FROM {table}")
    return sorted(found, key=lambda r: [str(v) for v in r.values()])


def fold_and_compare(
    store: ReadStore, events: EventLog, projections: tuple[SqlReadModel, ...] = SQL_READ_MODELS
) -> dict[str, int]:
    """Asserts each projection's live tables equal the fold; returns row counts."""
    reference = SqlProjector(store, projections, suffix=REFERENCE)
    with store.transaction() as tx:
        for p in projections:
            for physical in p.table_names(REFERENCE).values():
                tx.execute(f"DROP TABLE IF EXISTS {physical}")
            tx.execute("DELETE FROM projection_state WHERE name = %s", (p.name + REFERENCE,))
            tx.execute("DELETE FROM projection_pending WHERE name = %s", (p.name + REFERENCE,))
    reference.setup()
    for batch in events.iterate(0):
        reference.apply(batch)
    counts = {}
    for p in projections:
        for table in p.tables:
            live = rows(store, table.name)
            folded = rows(store, table.name + REFERENCE)
            assert live == folded, f"{table.name} differs from the fold of the event store"
            counts[table.name] = len(live)
    return counts
