"""The read models' Prometheus metrics, defined once, at import, in the default registry
(the other processes' metrics module imports this one, so each process registers them).
Their names are part of the operations contract: docs/ops/alerts.yml and the dashboards
query them."""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from projections.ports import EventSource

# how the library writes a bucket's bound (`le`); it has no type hints
_bound_text = cast(Callable[[float], str], floatToGoString)

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


class BatchHistogram(Collector):
    """A labelled histogram counted a batch at a time, exposed as prometheus_client's own
    Histogram is (`_bucket`, `_count`, `_sum`). A projector observes every event it
    applies, per read model: `Histogram.observe` (a lock and a walk over the bounds per
    call, 1.5 µs) was a twentieth of the projector's thread; here a batch takes the lock
    once and each event costs a bisection."""

    def __init__(self, name: str, documentation: str, label: str, buckets: Sequence[float]):
        self.name, self.documentation, self.label = name, documentation, label
        self.bounds = tuple(buckets)
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}  # per label value, per bucket (+Inf last)
        self._sums: dict[str, float] = {}

    def observe_all(self, label: str, amounts: Sequence[float]) -> None:
        counts = [0] * (len(self.bounds) + 1)
        bounds = self.bounds
        for amount in amounts:
            counts[bisect_left(bounds, amount)] += 1  # le: an amount on a bound is in it
        with self._lock:
            held = self._counts.setdefault(label, [0] * len(counts))
            for i, n in enumerate(counts):
                held[i] += n
            total = self._sums.get(label, 0.0)
            for amount in amounts:  # one by one, as the library adds (the same float)
                total += amount
            self._sums[label] = total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            snapshot = {label: (list(c), self._sums[label]) for label, c in self._counts.items()}
        les = [_bound_text(b) for b in self.bounds] + ["+Inf"]
        for label, (counts, total) in snapshot.items():  # first observed first, as the library
            cumulative, running = [], 0
            for le, n in zip(les, counts, strict=True):
                running += n
                cumulative.append((le, float(running)))
            family.add_metric([label], cumulative, total)
        yield family


FRESHNESS = BatchHistogram(
    "orderflow_read_model_freshness_seconds",
    "End to end: an event's commit to its change being visible in a read model.",
    "projection",
    _FRESHNESS_BUCKETS,
)
REGISTRY.register(FRESHNESS)

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
    # the read models of a batch share its events: each event's age once (an aware
    # datetime's arithmetic costs a microsecond; its hash is cached in it)
    ages = {moment: age_seconds(moment, now) for moment in set().union(*applied.values())}
    for projection, moments in applied.items():
        if moments:
            amounts = [ages[moment] for moment in moments]
            FRESHNESS.observe_all(projection, amounts)
            PROJECTION_LAG_SECONDS.labels(projection).set(min(amounts))  # the newest's
    for projection, position in positions.items():
        PROJECTION_POSITION.labels(projection).set(position)
