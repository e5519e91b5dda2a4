"""Which events a transaction may apply: claimed per position, not per projection.

A batch inserts one `projection_pending` row per position it is about to apply, in the
same transaction as the changes. The row's primary key is the lock: two projectors that
hold the same event (a Kafka rebalance redelivers it) serialise on that row alone, and
the second finds it taken; projectors with different events never wait for each other.
Afterwards, a short transaction folds the claimed positions into the watermark along the
log's predecessor chain (projections/watermark.py) and deletes the rows it covered.

Every applying transaction holds the state row FOR KEY SHARE, which the compaction's
update does not conflict with, but a rebuild's swap (FOR UPDATE) does: the swap waits
for the batches in flight and holds new ones off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from projections.ports import Tx
from projections.watermark import Watermark
from schemas.envelope import Envelope

CLAIM_CHUNK = 1000  # rows per INSERT: three variables each, under SQLite's limit


def _now() -> str:
    return datetime.now().astimezone().isoformat()


def ensure_state(tx: Tx, state_name: str) -> None:
    tx.execute(
        "INSERT INTO projection_state (name, watermark, updated_at) VALUES (%s, 0, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (state_name, _now()),
    )


def watermark(tx: Tx, state_name: str, lock: str = "") -> int:
    row = tx.one(f"SELECT watermark FROM projection_state WHERE name = %s{lock}", (state_name,))
    if row is None:
        ensure_state(tx, state_name)
        return watermark(tx, state_name, lock)
    return int(row["watermark"])


def claim(tx: Tx, state_name: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The envelopes not applied yet, in position order, now claimed by this transaction
    (one of each position)."""
    watermark(tx, state_name, " FOR KEY SHARE")  # the fence a rebuild's swap waits on
    unique = sorted({e.position: e for e in envelopes}.values(), key=lambda e: e.position)
    taken: set[int] = set()
    for start in range(0, len(unique), CLAIM_CHUNK):
        chunk = unique[start : start + CLAIM_CHUNK]
        taken.update(_insert(tx, state_name, chunk))
    # read after the claim: a compaction that committed meanwhile may have deleted the
    # row of a position it covered, and the watermark it wrote says so
    covered = watermark(tx, state_name)
    return [e for e in unique if e.position in taken and e.position > covered]


def _insert(tx: Tx, state_name: str, envelopes: Sequence[Envelope]) -> list[int]:
    """The positions inserted (those not claimed before), in one statement."""
    positions = [e.position for e in envelopes]
    previous = [e.previous_position for e in envelopes]
    if tx.dialect == "postgres":  # arrays: psycopg parses a long VALUES list slowly
        source = "SELECT %s, p, q FROM unnest(%s::bigint[], %s::bigint[]) AS u(p, q)"
        params: list[object] = [state_name, positions, previous]
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s)"] * len(envelopes))
        params = [v for row in zip(positions, previous, strict=True) for v in (state_name, *row)]
    rows = tx.all(
        f"INSERT INTO projection_pending (name, position, previous) {source} "
        "ON CONFLICT (name, position) DO NOTHING RETURNING position",
        params,
    )
    return [int(r["position"]) for r in rows]


def compact(tx: Tx, state_name: str, last_event_at: datetime | None = None) -> int:
    """Moves the watermark over the claimed positions that now follow on from it."""
    before = watermark(tx, state_name, " FOR NO KEY UPDATE")
    rows = tx.all(
        "SELECT position, previous FROM projection_pending WHERE name = %s", (state_name,)
    )
    mark = Watermark(before)
    for row in sorted(rows, key=lambda r: int(r["position"])):
        position = int(row["position"])
        if position > mark.position:
            mark.mark(position, int(row["previous"]))
    tx.execute(
        "UPDATE projection_state SET watermark = %s, updated_at = %s, "
        "last_event_at = COALESCE(%s, last_event_at) WHERE name = %s",
        (mark.position, _now(), last_event_at.isoformat() if last_event_at else None, state_name),
    )
    if rows and min(int(r["position"]) for r in rows) <= mark.position:
        tx.execute(
            "DELETE FROM projection_pending WHERE name = %s AND position <= %s",
            (state_name, mark.position),
        )
    return mark.position
