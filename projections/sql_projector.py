"""The projector of the SQL read models (projections/projector.py): applies envelopes to
them exactly once, each change committing in the same transaction as the read model's
watermark, so a redelivered event changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from projections import batch, claim_sets, claims, compaction, dead_letters, metrics
from projections.claims_vacuum import ClaimsVacuum
from projections.ports import EventSource, ReadStore, Tx
from projections.projector import DeadLetter, Progress, ReadModelStatus, RebuildReport
from projections.read_model import TIMESTAMP, ReadModelTx, SqlReadModel
from projections.watermark import Watermark
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from projections.verify import Checked

log = logging.getLogger(__name__)


def create_state_tables(tx: Tx) -> None:
    dead_letters.create_table(tx, tx.dialect)
    claim_sets.create_table(tx)
    ts = TIMESTAMP[tx.dialect]
    tx.execute(
        "CREATE TABLE IF NOT EXISTS projection_state (name TEXT PRIMARY KEY, "
        f"watermark BIGINT NOT NULL, last_event_at {ts}, updated_at {ts} NOT NULL)"
    )
    tx.execute(
        "CREATE TABLE IF NOT EXISTS projection_pending (name TEXT NOT NULL, "
        "position BIGINT NOT NULL, previous BIGINT NOT NULL, PRIMARY KEY (name, position))"
    )


def load_watermark(tx: Tx, state_name: str) -> Watermark:
    """Locks the projection's state row: concurrent appliers of one projection serialise."""
    row = tx.one("SELECT watermark FROM projection_state WHERE name = %s FOR UPDATE", (state_name,))
    if row is None:
        tx.execute(
            "INSERT INTO projection_state (name, watermark, updated_at) VALUES (%s, 0, %s) "
            "ON CONFLICT (name) DO NOTHING",
            (state_name, _now()),
        )
        row = tx.one(
            "SELECT watermark FROM projection_state WHERE name = %s FOR UPDATE", (state_name,)
        )
        assert row is not None
    beyond = tx.all(
        "SELECT position, previous FROM projection_pending WHERE name = %s", (state_name,)
    )
    return Watermark(
        int(row["watermark"]), {int(r["position"]): int(r["previous"]) for r in beyond}
    )


def save_watermark(
    tx: Tx, state_name: str, before: Watermark, after: Watermark, last: Envelope | None
) -> None:
    tx.execute(
        "UPDATE projection_state SET watermark = %s, updated_at = %s, "
        "last_event_at = COALESCE(%s, last_event_at) WHERE name = %s",
        (after.position, _now(), last.occurred_at.isoformat() if last else None, state_name),
    )
    gone = before.beyond.keys() - after.beyond.keys()
    new = after.beyond.keys() - before.beyond.keys()
    if gone:
        tx.executemany(
            "DELETE FROM projection_pending WHERE name = %s AND position = %s",
            [(state_name, p) for p in gone],
        )
    if new:
        tx.executemany(
            "INSERT INTO projection_pending (name, position, previous) VALUES (%s, %s, %s)",
            [(state_name, p, after.beyond[p]) for p in new],
        )


def _now() -> str:
    return datetime.now().astimezone().isoformat()


class SqlProjector:
    """The read models in one read store (the Projector protocol); `suffix` points it at
    shadow tables."""

    def __init__(
        self, store: ReadStore, projections: Sequence[SqlReadModel], suffix: str = ""
    ) -> None:
        self.store = store
        self.projections = list(projections)
        self.suffix = suffix
        self.vacuum = ClaimsVacuum()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.projections)

    def state_name(self, projection: SqlReadModel) -> str:
        return projection.name + self.suffix

    def setup(self, claim_set: bool = False) -> None:
        """`claim_set`: for a process that consumes the log (a Kafka projector), whose
        read models then claim each position once for all of them (claim_sets.py)."""
        with self.store.schema() as tx:
            create_state_tables(tx)
            for projection in self.projections:
                projection.create_tables(tx, self.store.dialect, self.suffix)
                # before any batch: two projectors' first batches would queue on the insert
                claims.ensure_state(tx, self.state_name(projection))
            if claim_set and tx.dialect == "postgres":
                claim_sets.register(tx, [self.state_name(p) for p in self.projections])

    def apply(self, envelopes: Sequence[Envelope]) -> int:
        """Applies a batch in one transaction; returns how many changes were new."""
        if not envelopes:
            return 0
        seen: dict[str, list[datetime]] = {}
        with self.store.transaction() as tx:
            applied = self.apply_in(tx, envelopes, seen)
        positions = self.compact(envelopes[-1])
        if not self.suffix:  # live tables, now visible (a rebuild's shadows are not)
            metrics.record_applied(seen, positions)
        self.vacuum.applied(self.store, len(envelopes))
        return applied

    def compact(self, last: Envelope | None = None) -> dict[str, int]:
        """Folds committed claims into each watermark (its own short transaction, so that
        two projectors never hold one row while they apply)."""
        with self.store.transaction() as tx:
            return self.compact_in(tx, last)

    def compact_in(self, tx: Tx, last: Envelope | None = None) -> dict[str, int]:
        at = last.occurred_at if last else None
        reached = compaction.compact_all(tx, [self.state_name(p) for p in self.projections], at)
        return {p.name: reached[self.state_name(p)] for p in self.projections}

    def apply_in(
        self,
        tx: Tx,
        envelopes: Sequence[Envelope],
        seen: dict[str, list[datetime]] | None = None,
    ) -> int:
        """`seen` collects the event times each projection applied (for metrics once the
        transaction committed)."""
        applied = 0
        names = [self.state_name(p) for p in self.projections]
        claimed = claims.claim_all(tx, names, envelopes)
        blocked_by_name = (
            dead_letters.blocked_aggregates(tx, [n for n in names if claimed[n]])
            if any(claimed.values())
            else {}
        )
        work: list[batch.Work] = [
            (ReadModelTx(tx, p.table_names(self.suffix)), p, claimed[n], blocked_by_name[n])
            for p, n in zip(self.projections, names, strict=True)
            if claimed[n]
        ]
        outcomes = batch.apply_together(tx, work) if tx.dialect == "postgres" else None
        if outcomes is None:  # one read model at a time, bisecting what the database refuses
            outcomes = [batch.apply_batch(*item) for item in work]
        for (_, projection, _, _), outcome in zip(work, outcomes, strict=True):
            name = self.state_name(projection)
            for envelope, error in outcome.failed:
                log.error("%s: event at %d dead-lettered: %s", name, envelope.position, error)
                dead_letters.park(tx, name, envelope, "failed", error)
            for envelope in outcome.held:
                dead_letters.park(tx, name, envelope, "held", dead_letters.HELD)
            applied += len(outcome.applied)
            if seen is not None and outcome.applied:
                seen[projection.name] = [e.occurred_at for e in outcome.applied]
        return applied

    def positions(self, tx: Tx | None = None) -> dict[str, int]:
        """Per read model, its watermark; read in `tx` when given (a reader's own)."""
        if tx is None:
            with self.store.read() as own:
                return self.positions(own)
        rows = tx.all("SELECT name, watermark FROM projection_state")
        found = {r["name"]: int(r["watermark"]) for r in rows}
        return {p.name: found.get(self.state_name(p), 0) for p in self.projections}

    def statuses(self) -> list[ReadModelStatus]:
        with self.store.read() as tx:
            rows = {r["name"]: r for r in tx.all("SELECT * FROM projection_state")}
        result = []
        for p in self.projections:
            row = rows.get(self.state_name(p), {})
            result.append(
                ReadModelStatus(
                    p.name,
                    int(row.get("watermark", 0)),
                    row.get("last_event_at"),
                    row.get("updated_at"),
                )
            )
        return result

    # rebuild and verify build on this class (a shadow projector): imported when called

    def rebuild(self, events: EventSource, progress: Progress | None = None) -> list[RebuildReport]:
        """One pass over the log rebuilds them all (projections/rebuild.py)."""
        from projections.rebuild import rebuild_all

        return rebuild_all(self.projections, self.store, events, progress)

    def checked_rebuild(
        self,
        names: Sequence[str],
        events: EventSource,
        *,
        swap: bool,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[Checked]:
        """One pass over the log for all of them (projections/verify.py)."""
        from projections.verify import checked_rebuild_all

        by_name = {p.name: p for p in self.projections}
        return checked_rebuild_all(
            [by_name[n] for n in names],
            self.store,
            events,
            swap=swap,
            force=force,
            progress=progress,
        )

    def letters(self, include_resolved: bool = False) -> list[DeadLetter]:
        return dead_letters.listing(self.store, include_resolved)

    def retry_letters(self, letter_ids: list[int] | None = None) -> tuple[int, int]:
        by_name = {p.name: p for p in self.projections}
        return dead_letters.retry(self.store, by_name, letter_ids)
