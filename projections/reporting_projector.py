"""Applies envelopes to the reporting tables in ClickHouse, each event's effect exactly once.

ClickHouse has no transaction spanning the fact rows and a checkpoint, so the guarantee is
built the other way round (docs/adr/0008-reporting-in-clickhouse.md):

1. Rows are idempotent. Every table is a ReplacingMergeTree whose key identifies the event
   (or the line) a row comes from, and every read deduplicates (`FINAL`, `argMax`): loading
   an event twice, or loading it again after a crash half way through a batch, changes no
   report.
2. Progress is recorded after the rows, in `reporting_progress`: one `applied` row per
   event (its position and its predecessor in the log), then a `watermark` row, computed
   by following the predecessor chain from the last watermark across the applied rows now
   in the table. A watermark therefore never claims an event whose rows are not in yet,
   and it is exact although positions have holes and Kafka delivers out of global order.
   Concurrent appliers (a consumer group) each insert their rows before they compute, so
   the last one to compute sees everybody's rows; the watermark is the max of all
   watermark rows, so it never goes back.

A batch costs one insert per table (a part each, never a part per row), a read of the
progress before and after, and, when a batch holds later events of orders created in an
earlier batch, one lookup of those orders' creation rows."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from projections.reporting import (
    ORDER_EVENTS,
    SALES_LINES,
    ClickHouseTable,
    Line,
    OrderFacts,
    ReportingReadModel,
    ReportRows,
    orders_needing_facts,
    reporting,
)
from projections.reporting_dead_letters import (
    DEAD_LETTERS,
    HELD,
    Parked,
    ReportingLetter,
    open_letters,
)
from projections.sql_projector import ReadModelStatus
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
# inserts are visible when the call returns: the watermark logic depends on it
INSERT_SETTINGS = {"async_insert": 0}
RECENT_ORDERS = 100_000  # creation facts kept in memory (a few hundred bytes each)


class ReportingFailure(RuntimeError):
    """An event the reporting projection could not take (see `rows_isolated`)."""

    def __init__(self, parked: Parked) -> None:
        super().__init__(f"position {parked.envelope.position}: {parked.error}")
        self.parked = parked


class MissingOrder(RuntimeError):
    """An order event arrived whose order was never created in these tables."""

    def __init__(self, e: Envelope) -> None:
        super().__init__(
            f"{e.type} at position {e.position} for order {e.aggregate_id}, "
            "whose order.created was never applied"
        )


def created_in(*envelopes: Envelope) -> dict[UUID, OrderFacts]:
    return {
        e.aggregate_id: OrderFacts.created_by(e) for e in envelopes if e.type == "order.created"
    }


def reach(mark: Watermark) -> int:
    """How far the predecessor chain runs from the watermark through the applied positions."""
    following = {previous: position for position, previous in mark.beyond.items()}
    reached = mark.position
    while reached in following:
        reached = following[reached]
    return reached


class ReportingProjector:
    """The reporting projection over one ClickHouse database; `suffix` points it at shadow
    tables (rebuilds). Safe to use from several threads: each call is its own statements."""

    def __init__(
        self, client: Client, suffix: str = "", projection: ReportingReadModel = reporting
    ) -> None:
        self.client = client
        self.suffix = suffix
        self.projection = projection
        self.tables = (*projection.tables, PROGRESS, DEAD_LETTERS)
        self.names = {t.name: t.name + suffix for t in self.tables}
        # creation facts of recent orders, so a payment rarely needs a lookup; a cache
        # only (facts never change), filled once the rows that hold them are in
        self._recent: OrderedDict[UUID, OrderFacts] = OrderedDict()

    @property
    def name(self) -> str:
        return self.projection.name

    def setup(self) -> None:
        """Creates the tables that are missing, and (live tables only) the views."""
        for table in self.tables:
            self.client.command(table.create(self.names[table.name]))
        if not self.suffix:
            for view, sql in self.projection.views.items():
                self.client.command(f"CREATE OR REPLACE VIEW {view} AS {sql.format(**self.names)}")

    def drop(self) -> None:
        for physical in self.names.values():
            self.client.command(f"DROP TABLE IF EXISTS {physical}")

    def close(self) -> None:
        self.client.close()

    # -- applying ------------------------------------------------------------------------

    def apply(self, envelopes: Sequence[Envelope], force: bool = False) -> int:
        """Applies a batch; returns how many events were new to it. `force` applies events
        the progress already lists too (harmless: rows are idempotent)."""
        if not envelopes:
            return 0
        mark = self.progress()
        fresh: dict[int, Envelope] = {}
        for e in envelopes:
            if (force or not mark.has(e.position)) and e.position not in fresh:
                fresh[e.position] = e
        batch = list(fresh.values())
        if batch:
            rows, parked = self.rows_isolated(batch, known=envelopes, blocked=self.blocked())
            self.insert_rows(rows)
            self.insert_letters([p.row() for p in parked])
            now = datetime.now(UTC)  # parked events count as handled, as in the SQL ones
            progress = [["applied", e.position, e.previous_position, now] for e in batch]
            mark.beyond.update((e.position, e.previous_position) for e in batch)
            reached = reach(mark)
            if reached > mark.position:  # as far as this applier knows; same insert, one part
                progress.append(["watermark", reached, mark.position, now])
            self._insert(PROGRESS.name, progress, PROGRESS.insert_columns)
            self._remember(created_in(*batch))
        if batch or reach(mark) > mark.position:
            self.advance()  # what the others applied meanwhile may carry it further
        return len(batch)

    def rows(self, batch: Sequence[Envelope], known: Sequence[Envelope] = ()) -> ReportRows:
        """The rows of a batch, or the first failure of one of its events."""
        rows, parked = self.rows_isolated(batch, known)
        if parked:
            raise ReportingFailure(parked[0])
        return rows

    def rows_isolated(
        self,
        batch: Sequence[Envelope],
        known: Sequence[Envelope] = (),
        blocked: set[UUID] | None = None,
    ) -> tuple[ReportRows, list[Parked]]:
        """The rows of a batch's events, and the events to park: those the projection
        fails on, and later events of their orders (or of orders `blocked` already).

        An order's later events need its creation: from the batch itself, from `known`
        envelopes delivered with it, from the recent orders this runner loaded, or from the
        creation row in the table (Kafka keeps one order's events in order, so it is there).
        Looking that up is I/O, and its errors propagate: only the projection's own
        failures (a bug, an event it cannot make sense of) are the events' fault."""
        facts = created_in(*known, *batch)
        missing = orders_needing_facts(batch) - facts.keys()
        for cached in [o for o in missing if o in self._recent]:
            facts[cached] = self._recent[cached]
            self._recent.move_to_end(cached)
            missing.discard(cached)
        if missing:
            facts.update(self.order_facts(missing))
        stopped = set(blocked or ())
        rows, parked = ReportRows(), []
        for e in sorted(batch, key=lambda envelope: envelope.position):
            if not self.projection.needs_order(e):
                continue
            if e.aggregate_id in stopped:
                parked.append(Parked(e, "held", HELD))
                continue
            one = ReportRows()
            try:
                order = facts.get(e.aggregate_id)
                if order is None:
                    raise MissingOrder(e)
                self.projection.project(e, order, one)
            except Exception as failure:  # deterministic: the projection's or the data's
                parked.append(Parked(e, "failed", f"{type(failure).__name__}: {failure}"))
                stopped.add(e.aggregate_id)
                continue
            rows.order_events.extend(one.order_events)
            rows.sales_lines.extend(one.sales_lines)
        return rows, parked

    def insert_rows(self, rows: ReportRows) -> None:
        self._insert(ORDER_EVENTS.name, rows.order_events, ORDER_EVENTS.insert_columns)
        self._insert(SALES_LINES.name, rows.sales_lines, SALES_LINES.insert_columns)

    # -- dead letters --------------------------------------------------------------------

    def insert_letters(self, rows: list[list[Any]]) -> None:
        self._insert(DEAD_LETTERS.name, rows, DEAD_LETTERS.insert_columns)

    def letters(self) -> list[ReportingLetter]:
        return open_letters(self, self.names[DEAD_LETTERS.name])

    def blocked(self) -> set[UUID]:
        """Orders with an open letter: their later events wait behind it."""
        table = self.names[DEAD_LETTERS.name]
        result = self.client.query(
            f"SELECT DISTINCT aggregate_id FROM {table} FINAL WHERE status IN ('failed', 'held')"
        )
        return {row[0] for row in result.result_rows}

    def order_facts(self, orders: set[UUID]) -> dict[UUID, OrderFacts]:
        result = self.client.query(
            "SELECT order_id, customer_id, currency, total_cents, `lines.sku`, "
            "`lines.quantity`, `lines.unit_price_cents` "
            f"FROM {self.names[ORDER_EVENTS.name]} "
            "WHERE order_id IN {orders:Array(UUID)} AND type = 'order.created' "
            "LIMIT 1 BY order_id",
            parameters={"orders": sorted(orders)},
        )
        return {
            order_id: OrderFacts(
                customer_id,
                currency,
                int(total),
                tuple(Line(*line) for line in zip(skus, quantities, prices, strict=True)),
            )
            for order_id, customer_id, currency, total, skus, quantities, prices in (
                result.result_rows
            )
        }

    def _remember(self, facts: dict[UUID, OrderFacts]) -> None:
        self._recent.update(facts)
        while len(self._recent) > RECENT_ORDERS:
            self._recent.popitem(last=False)

    def _insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        if rows:
            self.client.insert(
                self.names[table], rows, column_names=columns, settings=INSERT_SETTINGS
            )

    # -- progress ------------------------------------------------------------------------

    def progress(self) -> Watermark:
        """The watermark and the applied positions beyond it."""
        table = self.names[PROGRESS.name]
        row = self.client.query(
            f"WITH (SELECT max(position) FROM {table} WHERE kind = 'watermark') AS w "
            "SELECT w, groupArray((position, previous)) "
            f"FROM {table} WHERE kind = 'applied' AND position > w"
        ).result_rows[0]
        watermark, beyond = row
        return Watermark(int(watermark or 0), {int(p): int(q) for p, q in beyond})

    def advance(self) -> int:
        """Moves the watermark as far as the applied rows now in the table allow."""
        mark = self.progress()
        reached = reach(mark)
        if reached > mark.position:
            self._insert(
                PROGRESS.name,
                [["watermark", reached, mark.position, datetime.now(UTC)]],
                PROGRESS.insert_columns,
            )
        return reached

    def position(self) -> int:
        table = self.names[PROGRESS.name]
        value = self.client.command(f"SELECT max(position) FROM {table} WHERE kind = 'watermark'")
        return int(str(value))

    def positions(self) -> dict[str, int]:
        return {self.name: self.position()}

    def statuses(self) -> list[ReadModelStatus]:
        table = self.names[PROGRESS.name]
        position, updated_at = self.client.query(
            f"SELECT max(position), max(updated_at) FROM {table} WHERE kind = 'watermark'"
        ).result_rows[0]
        return [ReadModelStatus(self.name, int(position), None, updated_at if position else None)]
