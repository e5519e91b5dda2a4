"""Events a projection could not apply: parked with the error, never blocking the rest.

When a projection fails on an event (after a few tries, each leaving nothing behind; see
projections/batch.py), the event is dead-lettered and the projection goes on
with the other aggregates. Later events of the same aggregate are held behind it, so an
aggregate's events are never applied out of order. Retrying applies the aggregate's
parked events in order and releases them. The watermark counts parked events as
handled: `orderflow projections status` and the dead-letter list show what is parked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from projections import batch
from projections.batch import apply_batch
from projections.ports import Dialect, ReadStore, Tx
from projections.projector import DeadLetter
from projections.read_model import TIMESTAMP, ReadModelTx, SqlReadModel
from schemas.envelope import Envelope

ATTEMPTS = batch.ATTEMPTS
OPEN = ("failed", "held")
HELD = "held behind an earlier dead letter of this aggregate"
SERIAL = {"postgres": "BIGSERIAL PRIMARY KEY", "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT"}


def create_table(tx: Tx, dialect: Dialect) -> None:
    ts = TIMESTAMP[dialect]
    tx.execute(
        f"CREATE TABLE IF NOT EXISTS dead_letters (id {SERIAL[dialect]}, "
        "projection TEXT NOT NULL, position BIGINT NOT NULL, aggregate_id TEXT NOT NULL, "
        "event_type TEXT NOT NULL, envelope TEXT NOT NULL, error TEXT NOT NULL, "
        f"attempts INTEGER NOT NULL, status TEXT NOT NULL, created_at {ts} NOT NULL, "
        f"updated_at {ts} NOT NULL, UNIQUE (projection, position))"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def try_apply(
    tx: Tx, projection: SqlReadModel, envelope: Envelope, target: ReadModelTx
) -> str | None:
    """Applies the event; returns the error after ATTEMPTS failures, None on success."""
    outcome = apply_batch(target, projection, [envelope], set())
    return outcome.failed[0][1] if outcome.failed else None


def blocked_aggregates(tx: Tx, state_names: Sequence[str]) -> dict[str, set[str]]:
    """Per read model, the aggregates whose events wait behind an open dead letter (one
    statement for a projector's read models: a round trip each was a batch's cost at low
    rates, when a batch is an event or two)."""
    marks = ", ".join(["%s"] * len(state_names))
    rows = tx.all(
        "SELECT DISTINCT projection, aggregate_id FROM dead_letters "
        f"WHERE projection IN ({marks}) AND status IN ('failed', 'held')",
        tuple(state_names),
    )
    blocked: dict[str, set[str]] = {name: set() for name in state_names}
    for row in rows:
        blocked[row["projection"]].add(row["aggregate_id"])
    return blocked


def park(tx: Tx, state_name: str, envelope: Envelope, status: str, error: str) -> None:
    tx.execute(
        "INSERT INTO dead_letters (projection, position, aggregate_id, event_type, envelope, "
        "error, attempts, status, created_at, updated_at) VALUES "
        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (projection, position) DO NOTHING",
        (
            state_name,
            envelope.position,
            str(envelope.aggregate_id),
            envelope.type,
            envelope.model_dump_json(),
            error,
            ATTEMPTS if status == "failed" else 0,
            status,
            _now(),
            _now(),
        ),
    )


def _letter(row: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        row["id"],
        row["projection"],
        row["position"],
        row["aggregate_id"],
        row["event_type"],
        row["status"],
        row["attempts"],
        row["error"],
        row["created_at"],
        Envelope.model_validate_json(row["envelope"]),
    )


def parked_up_to(store: ReadStore, projections: Sequence[str], position: int) -> dict[str, int]:
    """Per projection, how many events at or below `position` are parked (open): a read
    model whose watermark passed `position` does not reflect them."""
    names = ", ".join(["%s"] * len(projections))
    with store.read() as tx:
        rows = tx.all(
            "SELECT projection, COUNT(*) AS n FROM dead_letters WHERE status IN "
            f"('failed', 'held') AND position <= %s AND projection IN ({names}) "
            "GROUP BY projection",
            (position, *projections),
        )
    return {str(r["projection"]): int(r["n"]) for r in rows}


def open_counts(store: ReadStore) -> dict[tuple[str, str], int]:
    """Open letters per (projection, status)."""
    with store.read() as tx:
        rows = tx.all(
            "SELECT projection, status, COUNT(*) AS n FROM dead_letters "
            "WHERE status IN ('failed', 'held') GROUP BY projection, status"
        )
    return {(str(r["projection"]), str(r["status"])): int(r["n"]) for r in rows}


def listing(store: ReadStore, include_resolved: bool = False) -> list[DeadLetter]:
    sql = "SELECT * FROM dead_letters"
    if not include_resolved:
        sql += " WHERE status IN ('failed', 'held')"
    with store.read() as tx:
        return [_letter(r) for r in tx.all(sql + " ORDER BY projection, position")]


def find(store: ReadStore, letter_id: int) -> DeadLetter | None:
    with store.read() as tx:
        row = tx.one("SELECT * FROM dead_letters WHERE id = %s", (letter_id,))
    return _letter(row) if row else None


def retry(
    store: ReadStore, projections: dict[str, SqlReadModel], letter_ids: list[int] | None = None
) -> tuple[int, int]:
    """Re-applies parked events, per (projection, aggregate), in position order; the
    first failure stops that aggregate again. None retries everything open. Returns
    (released, still parked)."""
    released = parked = 0
    with store.transaction() as tx:
        # FOR UPDATE: a concurrent retrier waits here until this one committed, then
        # PostgreSQL re-checks the status of each row and leaves out those resolved
        # meanwhile, so no letter is applied twice. Rows lock in one order: no deadlock.
        # (SQLite's write transaction serialises retriers already.)
        rows = tx.all(
            "SELECT * FROM dead_letters WHERE status IN ('failed', 'held') "
            "ORDER BY projection, aggregate_id, position FOR UPDATE"
        )
        chosen = {
            (r["projection"], r["aggregate_id"])
            for r in rows
            if letter_ids is None or r["id"] in letter_ids
        }
        stuck: set[tuple[str, str]] = set()
        for row in rows:
            key = (row["projection"], row["aggregate_id"])
            if key not in chosen:
                continue
            projection = projections.get(row["projection"])
            if projection is None or key in stuck:
                parked += 1
                continue
            letter = _letter(row)
            target = ReadModelTx(tx, projection.table_names())
            error = try_apply(tx, projection, letter.envelope, target)
            if error is None:
                tx.execute(
                    "UPDATE dead_letters SET status = 'resolved', updated_at = %s WHERE id = %s",
                    (_now(), letter.id),
                )
                released += 1
            else:
                tx.execute(
                    "UPDATE dead_letters SET status = 'failed', error = %s, "
                    "attempts = attempts + %s, updated_at = %s WHERE id = %s",
                    (error, ATTEMPTS, _now(), letter.id),
                )
                stuck.add(key)
                parked += 1
    return released, parked
