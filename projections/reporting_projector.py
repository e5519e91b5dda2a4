"""Applies envelopes to the reporting tables in ClickHouse, each event's effect exactly once.

ClickHouse has no transaction spanning the fact rows and a checkpoint, so the guarantee is
built the other way round (docs/adr/0008-reporting-in-clickhouse.md):

1. Rows are idempotent. Every table is a ReplacingMergeTree whose key identifies the event
   (or the line) a row comes from, and every read deduplicates (`FINAL`, `argMax`): loading
   an event twice, or loading it again after a crash half way through a batch, changes no
   report.
2. Progress is recorded after the rows, in `reporting_progress`
   (projections/reporting_progress.py): a watermark never claims an event whose rows are
   not in yet, exact across position holes and out-of-order delivery.

A batch costs one insert per table (a part each, never a part per row), a read of the
progress before and after, and, when a batch holds later events of orders created in an
earlier batch, one lookup of those orders' creation rows."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from projections.ports import EventSource
from projections.projector import (
    DeadLetter,
    NotComparable,
    Progress,
    ReadModelStatus,
    RebuildReport,
)
from projections.reporting import (
    Line,
    OrderFacts,
    ReportingReadModel,
    ReportRows,
    orders_needing_facts,
    reporting,
)
from projections.reporting_dead_letters import DEAD_LETTERS, HELD, Parked, open_letters, retry
from projections.reporting_progress import PROGRESS, ProgressTable
from projections.reporting_tables import ORDER_EVENTS, SALES_LINES
from schemas.envelope import Envelope

if TYPE_CHECKING:  # clickhouse-connect is imported by whoever makes the client
    from clickhouse_connect.driver.client import Client

    from projections.verify import Checked


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


class ReportingProjector:
    """The reporting read model over one ClickHouse database (the Projector protocol);
    `suffix` points it at shadow tables (rebuilds). Safe to use from several threads:
    each call is its own statements."""

    def __init__(
        self, client: Client, suffix: str = "", projection: ReportingReadModel = reporting
    ) -> None:
        self.client = client
        self.suffix = suffix
        self.projection = projection
        self.tables = (*projection.tables, PROGRESS, DEAD_LETTERS)
        self.physical = {t.name: t.name + suffix for t in self.tables}
        # creation facts of recent orders, so a payment rarely needs a lookup; a cache
        # only (facts never change), filled once the rows that hold them are in
        self._recent: OrderedDict[UUID, OrderFacts] = OrderedDict()
        self.progress = ProgressTable(client, self.physical[PROGRESS.name], self._insert)

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def setup(self) -> None:
        """Creates the tables that are missing, and (live tables only) the views."""
        for table in self.tables:
            self.client.command(table.create(self.physical[table.name]))
        if not self.suffix:
            for view, sql in self.projection.views.items():
                self.client.command(
                    f"CREATE OR REPLACE VIEW {view} AS {sql.format(**self.physical)}"
                )

    def drop(self) -> None:
        for physical in self.physical.values():
            self.client.command(f"DROP TABLE IF EXISTS {physical}")

    def close(self) -> None:
        self.client.close()

    # -- applying ------------------------------------------------------------------------

    def apply(self, envelopes: Sequence[Envelope], force: bool = False) -> int:
        """Applies a batch; returns how many events were new to it. `force` applies events
        the progress already lists too (harmless: rows are idempotent)."""
        if not envelopes:
            return 0
        mark = self.progress.read()
        fresh: dict[int, Envelope] = {}
        for e in envelopes:
            if (force or not mark.has(e.position)) and e.position not in fresh:
                fresh[e.position] = e
        batch = list(fresh.values())
        if batch:
            rows, parked = self.rows_isolated(batch, known=envelopes, blocked=self.blocked())
            self.insert_rows(rows)
            self.insert_letters([p.row() for p in parked])
            self.progress.record(mark, batch)  # parked events count as handled, as in SQL
            self._remember(created_in(*batch))
        if batch or mark.reach() > mark.position:
            self.progress.advance()  # what the others applied meanwhile may carry it further
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

    def letters(self, include_resolved: bool = False) -> list[DeadLetter]:
        """The open ones (ClickHouse keeps no resolved history worth listing)."""
        return open_letters(self, self.physical[DEAD_LETTERS.name])

    def retry_letters(self, letter_ids: list[int] | None = None) -> tuple[int, int]:
        """All open letters (None); these letters have no ids, so naming some retries none."""
        return retry(self) if letter_ids is None else (0, 0)

    def blocked(self) -> set[UUID]:
        """Orders with an open letter: their later events wait behind it."""
        table = self.physical[DEAD_LETTERS.name]
        result = self.client.query(
            f"SELECT DISTINCT aggregate_id FROM {table} FINAL WHERE status IN ('failed', 'held')"
        )
        return {row[0] for row in result.result_rows}

    def order_facts(self, orders: set[UUID]) -> dict[UUID, OrderFacts]:
        result = self.client.query(
            "SELECT order_id, customer_id, currency, total_cents, `lines.sku`, "
            "`lines.quantity`, `lines.unit_price_cents` "
            f"FROM {self.physical[ORDER_EVENTS.name]} "
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
                self.physical[table], rows, column_names=columns, settings=INSERT_SETTINGS
            )

    # -- progress and life cycle ---------------------------------------------------------

    def position(self) -> int:
        return self.progress.position()

    def positions(self) -> dict[str, int]:
        return {self.name: self.position()}

    def statuses(self) -> list[ReadModelStatus]:
        return [self.progress.status(self.name)]

    def rebuild(self, events: EventSource, progress: Progress | None = None) -> list[RebuildReport]:
        """Shadow tables, EXCHANGE TABLES (projections/reporting_rebuild.py)."""
        from projections.reporting_rebuild import rebuild_reporting  # it builds on this class

        return [rebuild_reporting(self, events, progress)]

    def checked_rebuild(
        self,
        names: Sequence[str],
        events: EventSource,
        *,
        swap: bool,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[Checked]:
        raise NotComparable(", ".join(names))
