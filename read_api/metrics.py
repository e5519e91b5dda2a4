"""Gauges the read API refreshes when scraped: each projection's lag behind the event
store (positions and the age of its oldest unapplied event) and open dead letters."""

from __future__ import annotations

from collections.abc import Callable

from infra import metrics
from infra.bootstrap import ReadSide
from infra.event_log import EventLog
from projections.dead_letters import OPEN


def refresher(side: ReadSide) -> Callable[[], None]:
    def refresh() -> None:
        events = EventLog(side.events)
        head = events.head()
        for name, position in side.runner.positions().items():
            metrics.PROJECTION_POSITION.labels(name).set(position)
            metrics.PROJECTION_LAG_POSITIONS.labels(name).set(max(0, head - position))
            oldest = events.read(position, 1) if head > position else []
            age = metrics.age_seconds(oldest[0].occurred_at) if oldest else 0.0
            metrics.PROJECTION_LAG_SECONDS.labels(name).set(age)
        with side.store.read() as tx:
            rows = tx.all(
                "SELECT projection, status, COUNT(*) AS n FROM dead_letters "
                "WHERE status IN ('failed', 'held') GROUP BY projection, status"
            )
        counts = {(str(r["projection"]), str(r["status"])): int(r["n"]) for r in rows}
        for projection in side.runner.positions():
            for status in OPEN:
                counts.setdefault((projection, status), 0)
        for (projection, status), n in counts.items():
            metrics.DEAD_LETTERS.labels(projection, status).set(n)

    return refresh
