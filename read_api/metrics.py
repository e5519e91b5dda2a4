"""Gauges the read API refreshes when scraped: each projection's lag behind the event
store (positions and the age of its oldest unapplied event), open dead letters, and the
refunds owed to customers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from infra.bootstrap import ReadSide
from infra.eventstore.event_log import EventLog
from infra.observability.metrics import REFUNDS_DUE, REFUNDS_DUE_CENTS
from projections import dead_letters, metrics, queries

log = logging.getLogger(__name__)
_refunded_currencies: set[str] = set()  # currencies with a gauge already, to zero them


def refresher(side: ReadSide) -> Callable[[], None]:
    def refresh() -> None:
        events = EventLog(side.events)
        head = events.head()
        counts = dead_letters.open_counts(side.store)  # the read store's, counted in SQL
        for projector in side.projectors:
            try:
                positions = projector.positions()
                # the read store's letters are counted above; another store's are listed
                letters = projector.letters() if projector is not side.runner else []
            except Exception as down:  # one store down hides none of the others' gauges
                log.warning("read model metrics of %s not refreshed: %r", projector.names, down)
                continue
            for name, position in positions.items():
                metrics.PROJECTION_POSITION.labels(name).set(position)
                metrics.PROJECTION_LAG_POSITIONS.labels(name).set(max(0, head - position))
                metrics.PROJECTION_LAG_SECONDS.labels(name).set(
                    metrics.lag_seconds(events, position, head)
                )
            for letter in letters:
                key = (letter.projection, letter.status)
                counts[key] = counts.get(key, 0) + 1
            for name in projector.names:
                for status in dead_letters.OPEN:
                    counts.setdefault((name, status), 0)
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
