"""The Prometheus metrics of OrderFlow's adapters and entry points, defined once, at
import, in the default registry (the command bus's own are in commands/metrics.py).

Processes expose them at `/metrics` (both APIs) or, for the relay, the projectors and the
worker, on ORDERFLOW_METRICS_PORT. Gauges that describe another process's progress (a
projection's lag, dead letters) are refreshed by the read API when it is scraped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

# request latency: sub-millisecond answers to multi-second contended commits
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# event committed -> visible in a read model: tens of milliseconds to minutes behind
_FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

EVENTS_APPENDED = Counter(
    "orderflow_events_appended_total", "Events appended to the event store by commands."
)
EVENTS_READ = Histogram(
    "orderflow_command_events_read",
    "Stored events and snapshots read to load what a command needed (an aggregate already "
    "in memory and up to date costs 0).",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000, 100_000),
)
IDEMPOTENCY_PURGED = Counter(
    "orderflow_idempotency_keys_purged_total",
    "Stored idempotent answers the worker purged after ORDERFLOW_IDEMPOTENCY_WINDOW.",
)
PAYMENTS_UNAPPLIED = Counter(
    "orderflow_payments_unapplied_total",
    "Provider payments recorded as owed back (order.payment_unapplied), by the order's "
    "status when the payment arrived.",
    ["order_status"],
)
REFUNDS_DUE = Gauge(
    "orderflow_refunds_due",
    "Refunds owed to customers now, per currency (refreshed when the read API is scraped).",
    ["currency"],
)
REFUNDS_DUE_CENTS = Gauge(
    "orderflow_refunds_due_cents",
    "Money owed back to customers now, in cents, per currency (read API, at scrape).",
    ["currency"],
)
RELAY_PUBLISHED = Counter(
    "orderflow_relay_published_total", "Events the relay published and Kafka acknowledged."
)
RELAY_POSITION = Gauge("orderflow_relay_position", "Last position Kafka acknowledged.")
RELAY_LAG_POSITIONS = Gauge(
    "orderflow_relay_lag_positions", "Event store head minus the relay's position."
)
RELAY_LAG_SECONDS = Gauge(
    "orderflow_relay_lag_seconds",
    "Age of the oldest event of the last published batch when Kafka acknowledged it "
    "(0 when the relay found nothing new).",
)
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
KAFKA_CONSUMER_LAG = Gauge(
    "orderflow_kafka_consumer_lag",
    "Messages behind the partition's end offset, per consumer group and partition.",
    ["group", "topic", "partition"],
)
DEAD_LETTERS = Gauge(
    "orderflow_dead_letters",
    "Open dead letters (failed or held) per projection and status.",
    ["projection", "status"],
)
HTTP_REQUESTS = Counter(
    "orderflow_http_requests_total",
    "HTTP requests answered, by API, method, route template and status code.",
    ["api", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "orderflow_http_request_duration_seconds",
    "Time from a request's arrival to its answer's start, by API, method and route template.",
    ["api", "method", "route"],
    buckets=_LATENCY_BUCKETS,
)
READS_BEHIND_DEAD_LETTERS = Counter(
    "orderflow_reads_behind_dead_letters_total",
    "Reads with min_position answered while events at or below it were parked as dead "
    "letters in a projection they read (answered with X-Projection-Dead-Letters).",
    ["projection"],
)
RATE_LIMITED = Counter(
    "orderflow_rate_limited_total", "Requests answered 429, by API and key kind.", ["api", "kind"]
)


def age_seconds(moment: datetime, now: datetime | None = None) -> float:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())


def record_applied(applied: Mapping[str, Sequence[datetime]], positions: Mapping[str, int]) -> None:
    """After a projection's transaction committed: its events' times -> freshness, lag."""
    now = datetime.now(UTC)
    for projection, moments in applied.items():
        for moment in moments:
            FRESHNESS.labels(projection).observe(age_seconds(moment, now))
        if moments:
            PROJECTION_LAG_SECONDS.labels(projection).set(age_seconds(max(moments), now))
    for projection, position in positions.items():
        PROJECTION_POSITION.labels(projection).set(position)


def latest() -> tuple[bytes, str]:
    """The default registry in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_if_configured(port: int | None) -> bool:
    """Exposes /metrics on `port` (ORDERFLOW_METRICS_PORT) in a background thread."""
    if not port:
        return False
    start_http_server(port)
    return True


Refresh = Callable[[], None]
