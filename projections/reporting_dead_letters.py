"""Events the reports could not take: parked in ClickHouse, never blocking the rest.

The SQL projections' dead letters (projections/dead_letters.py) live in a transaction with
their read models; the reports live in ClickHouse, which has no such transaction, so their
letters live beside the fact tables, in `reporting_dead_letters` (ReplacingMergeTree on
the position, the newest `updated_at` wins). The rules are the same: an event the
reporting projection fails on is parked with its error; later events of the same order
are held behind it, so an order's facts are never applied out of order; the watermark
counts parked events as handled; a retry applies an order's parked events in order and
resolves them, the first failure stopping that order again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from projections.projector import DeadLetter
from projections.reporting_tables import ClickHouseTable
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from projections.reporting_projector import ReportingProjector

DEAD_LETTERS = ClickHouseTable(
    "reporting_dead_letters",
    columns=(
        ("position", "UInt64"),
        ("aggregate_id", "UUID"),
        ("event_type", "String"),
        ("envelope", "String"),
        ("error", "String"),
        ("status", "Enum8('failed' = 1, 'held' = 2, 'resolved' = 3)"),
        ("attempts", "UInt32"),
        ("updated_at", "DateTime64(6, 'UTC')"),
    ),
    engine="ReplacingMergeTree(updated_at) ORDER BY position",
    description="events the reports could not take, and those held behind them",
)
HELD = "held behind an earlier event of this order that the reports could not take"


@dataclass(frozen=True)
class Parked:
    envelope: Envelope
    status: str  # failed | held
    error: str

    def row(self, attempts: int = 1) -> list[Any]:
        e = self.envelope
        now = datetime.now(UTC)
        return [e.position, e.aggregate_id, e.type, e.model_dump_json(), self.error,
                self.status, attempts, now]  # fmt: skip


def open_letters(runner: ReportingProjector, table: str) -> list[DeadLetter]:
    result = runner.client.query(
        "SELECT position, aggregate_id, event_type, status, attempts, error, updated_at, "
        f"envelope FROM {table} FINAL WHERE status IN ('failed', 'held') ORDER BY position"
    )
    return [
        DeadLetter(None, runner.name, int(p), str(a), t, str(s), int(n), err, at, _envelope(env))
        for p, a, t, s, n, err, at, env in result.result_rows
    ]


def _envelope(text: str) -> Envelope:
    return Envelope.model_validate_json(text)


def retry(runner: ReportingProjector) -> tuple[int, int]:
    """Applies the open letters again, per order in position order; returns (released,
    still parked)."""
    released = parked = 0
    stuck: set[str] = set()
    resolved: list[list[Any]] = []
    again: list[list[Any]] = []
    for letter in runner.letters():
        if letter.aggregate_id in stuck:
            parked += 1
            continue
        rows, failures = runner.rows_isolated([letter.envelope])
        if failures:
            failure = failures[0]
            again.append(Parked(letter.envelope, "failed", failure.error).row(letter.attempts + 1))
            stuck.add(letter.aggregate_id)
            parked += 1
            continue
        runner.insert_rows(rows)
        resolved.append(Parked(letter.envelope, "resolved", letter.error).row(letter.attempts))
        released += 1
    runner.insert_letters([*resolved, *again])
    return released, parked
