"""Gauges the read API refreshes when scraped: each projection's lag behind the event
store (positions and the age of its oldest unapplied event), open dead letters, and the
refunds owed to customers."""

from __future__ import annotations

from collections.abc import Callable

from infra.bootstrap import ReadSide
from infra.eventstore.event_log import EventLog
from infra.observability.metrics import REFUNDS_DUE, REFUNDS_DUE_CENTS
from projections import metrics, queries
from projections.dead_letters import OPEN

_refunded_currencies: set[str] = set()  # currencies with a gauge already, to zero them


def refresher(side: ReadSide) -> Callable[[], None]:
    def refresh() -> None:
        events = EventLog(side.events)
        head = events.head()
        for name, position in side.runner.positions().items():
            metrics.PROJECTION_POSITION.labels(name).set(position)
            metrics.PROJECTION_LAG_POSITIONS.labels(name).set(max(0, head - position))
            metrics.PROJECTION_LAG_SECONDS.labels(name).set(
                metrics.lag_seconds(events, position, head)
            )
        with side.store.read() as tx:
            rows = tx.all(
                "SELECT projection, status, COUNT(*) AS n FROM dead_letters "
                "WHERE status IN ('failed', 'held') GROUP BY projection, status"
            )
        counts = {(str(r["projection"]), str(r["status"])): int(r["n"]) for r in rows}
        if side.reporting is not None:  # the reports' letters live in ClickHouse
            for letter in side.reporting.letters():
                key = (side.reporting.name, letter.status)
                counts[key] = counts.get(key, 0) + 1
            for status in OPEN:
                counts.setdefault((side.reporting.name, status), 0)
        for projection in side.runner.positions():
            for status in OPEN:
                counts.setdefault((projection, status), 0)
        for (projection, status), n in counts.items():
            metrics.DEAD_LETTERS.labels(projection, status).set(n)
        with side.store.read() as tx:
            owed = queries.refund_totals(tx)
        for row in owed:
            REFUNDS_DUE.labels(row["currency"]).set(int(row["refunds"]))
            REFUNDS_DUE_CENTS.labels(row["currency"]).set(int(row["amount_cents"]))
        for currency in _refunded_currencies - {str(row["currency"]) for row in owed}:
            REFUNDS_DUE.labels(currency).set(0)  # all paid back since the last scrape
            REFUNDS_DUE_CENTS.labels(currency).set(0)
        _refunded_currencies.update(str(row["currency"]) for row in owed)

    return refresh
