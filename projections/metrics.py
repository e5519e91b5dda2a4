"""The read models' Prometheus metrics, defined once, at import, in the default registry
(the other processes' metrics module imports this one, so each process registers them).
Their names are part of the operations contract: docs/ops/alerts.yml and the dashboards
query them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge, Histogram

from projections.ports import EventSource

# event committed -> visible in a read model: tens of milliseconds to minutes behind
_FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

PROJECTION_POSITION = Gauge(
    "orderflow_projection_position", "A projection's watermark.", ["projection"]
)
PROJECTION_LAG_POSITIONS = Gauge(
    "orderflow_projection_lag_positions",
    "Event store head minus a projection's watermark (refreshed when the read API is scraped).",
    ["projection"],
)
PROJECTION_LAG_SECONDS = Gauge(
    "orderflow_projection_lag_seconds",
    "Event time to applied: for the last batch a projection applied, now minus its newest "
    "event's time; when scraped from the read API, the age of the oldest unapplied event.",
    ["projection"],
)
FRESHNESS = Histogram(
    "orderflow_read_model_freshness_seconds",
    "End to end: an event's commit to its change being visible in a read model.",
    ["projection"],
    buckets=_FRESHNESS_BUCKETS,
)
DEAD_LETTERS = Gauge(
    "orderflow_dead_letters",
    "Open dead letters (failed or held) per projection and status.",
    ["projection", "status"],
)
READS_BEHIND_DEAD_LETTERS = Counter(
    "orderflow_reads_behind_dead_letters_total",
    "Reads with min_position answered while events at or below it were parked as dead "
    "letters in a projection they read (answered with X-Projection-Dead-Letters).",
    ["projection"],
)


def age_seconds(moment: datetime, now: datetime | None = None) -> float:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())


def lag_seconds(events: EventSource, position: int, head: int) -> float:
    """How long the oldest event a read model at `position` has not applied has waited
    (0 when it is at the head)."""
    oldest = events.read(position, 1) if head > position else []
    return age_seconds(oldest[0].occurred_at) if oldest else 0.0


def record_applied(applied: Mapping[str, Sequence[datetime]], positions: Mapping[str, int]) -> None:
    """After a projection's transaction committed: its events' times -> freshness, lag."""
    now = datetime.now(UTC)
    for projection, moments in applied.items():
        freshness = FRESHNESS.labels(projection)
        for moment in moments:
            freshness.observe(age_seconds(moment, now))
        if moments:
            PROJECTION_LAG_SECONDS.labels(projection).set(age_seconds(max(moments), now))
    for projection, position in positions.items():
        PROJECTION_POSITION.labels(projection).set(position)
