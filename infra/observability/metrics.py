"""The Prometheus metrics of OrderFlow's adapters and entry points, defined once, at
import, in the default registry (the command bus's own are in commands/metrics.py, the read
models' in projections/metrics.py, which this module imports so that they are registered).

Processes expose them at `/metrics` (both APIs) or, for the relay, the projectors and the
worker, on ORDERFLOW_METRICS_PORT. Gauges that describe another process's progress (a
projection's lag, dead letters) are refreshed by the read API when it is scraped."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

# the read models' metrics are defined with them; importing them here registers them in
# every process that serves /metrics
from projections.metrics import age_seconds as age_seconds

# request latency: sub-millisecond answers to multi-second contended commits
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

EVENTS_APPENDED = Counter(
    "orderflow_events_appended_total", "Events appended to the event store by commands."
)
EVENTS_READ = Histogram(
    "orderflow_command_events_read",
    "Stored events and snapshots read to load what a command needed (an aggregate already "
    "in memory and up to date costs 0).",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10_000, 100_000),
)
COMMANDS_ROUTED = Counter(
    "orderflow_commands_routed_total",
    "Commands on a contended SKU between write processes (ADR 0028): forwarded to the "
    "owner, received as the owner, decided here as the owner was unreachable (fallback), or "
    "sent with no answer back (lost, answered 503).",
    ["way"],
)
GROUP_COMMIT_REDECIDED = Counter(
    "orderflow_group_commit_redecided_total",
    "Commands of a group-commit batch decided again because another process appended first "
    "to an aggregate they looked up.",
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
KAFKA_CONSUMER_LAG = Gauge(
    "orderflow_kafka_consumer_lag",
    "Messages behind the partition's end offset, per consumer group and partition.",
    ["group", "topic", "partition"],
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
RATE_LIMITED = Counter(
    "orderflow_rate_limited_total", "Requests answered 429, by API and key kind.", ["api", "kind"]
)


def latest() -> tuple[bytes, str]:
    """The default registry in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_if_configured(port: int | None) -> bool:
    """Exposes /metrics on `port` (ORDERFLOW_METRICS_PORT) in a background thread."""
    if not port:
        return False
    start_http_server(port)
    return True
