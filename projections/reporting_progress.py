"""The reporting projection's watermark, kept in ClickHouse beside its rows.

ClickHouse has no transaction spanning the fact rows and a checkpoint, so progress is
recorded after the rows, in `reporting_progress`: one `applied` row per event (its
position and its predecessor in the log), then a `watermark` row, computed by following
the predecessor chain (Watermark.reach) from the last watermark across the applied rows
now in the table. A watermark therefore never claims an event whose rows are not in yet,
and it is exact although positions have holes and Kafka delivers out of global order.
Concurrent appliers (a consumer group) each insert their rows before they compute, so the
last one to compute sees everybody's rows; the watermark is the max of all watermark
rows, so it never goes back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from projections.projector import ReadModelStatus
from projections.reporting_tables import ClickHouseTable
from projections.watermark import Watermark
from schemas.envelope import Envelope

if TYPE_CHECKING:  # clickhouse-connect is imported by whoever makes the client
    from clickhouse_connect.driver.client import Client

PROGRESS = ClickHouseTable(
    "reporting_progress",
    columns=(
        ("kind", "Enum8('applied' = 1, 'watermark' = 2)"),
        ("position", "UInt64"),
        ("previous", "UInt64"),
        ("updated_at", "DateTime64(6, 'UTC')"),
    ),
    engine="ReplacingMergeTree ORDER BY (kind, position)",
    description="the events applied and the watermark: everything up to it is in",
)
# (table, rows, columns): the projector's insert, visible when it returns
Insert = Callable[[str, list[list[Any]], list[str]], None]


class ProgressTable:
    """One progress table (live or a rebuild's shadow), written through `insert`."""

    def __init__(self, client: Client, physical: str, insert: Insert) -> None:
        self.client = client
        self.physical = physical
        self._insert = insert

    def read(self) -> Watermark:
        """The watermark and the applied positions beyond it."""
        row = self.client.query(
            f"WITH (SELECT max(position) FROM {self.physical} WHERE kind = 'watermark') AS w "
            "SELECT w, groupArray((position, previous)) "
            f"FROM {self.physical} WHERE kind = 'applied' AND position > w"
        ).result_rows[0]
        watermark, beyond = row
        return Watermark(int(watermark or 0), {int(p): int(q) for p, q in beyond})

    def record(self, mark: Watermark, applied: Sequence[Envelope]) -> None:
        """After their rows: the events applied and, in the same insert (one part), the
        watermark as far as this applier knows. `mark` moves along."""
        now = datetime.now(UTC)
        rows: list[list[Any]] = []
        before = mark.position
        for e in applied:
            rows.append(["applied", e.position, e.previous_position, now])
            mark.mark(e.position, e.previous_position)
        if mark.position > before:
            rows.append(["watermark", mark.position, before, now])
        self._insert(PROGRESS.name, rows, PROGRESS.insert_columns)

    def advance(self) -> int:
        """Moves the watermark as far as the applied rows now in the table allow."""
        mark = self.read()
        reached = mark.reach()
        if reached > mark.position:
            row = ["watermark", reached, mark.position, datetime.now(UTC)]
            self._insert(PROGRESS.name, [row], PROGRESS.insert_columns)
        return reached

    def position(self) -> int:
        value = self.client.command(
            f"SELECT max(position) FROM {self.physical} WHERE kind = 'watermark'"
        )
        return int(str(value))

    def status(self, name: str) -> ReadModelStatus:
        position, updated_at = self.client.query(
            f"SELECT max(position), max(updated_at) FROM {self.physical} WHERE kind = 'watermark'"
        ).result_rows[0]
        return ReadModelStatus(name, int(position), None, updated_at if position else None)
