"""The freshness histogram, counted a batch at a time, exposes what prometheus_client's own
Histogram exposes for the same observations (the oracle: the library's implementation)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from projections.metrics import BatchHistogram

BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# amounts on the bounds themselves (a bucket is "less than or equal"), between them, beyond
amounts = st.one_of(st.sampled_from(BOUNDS), st.floats(0.0, 400.0, allow_nan=False))
batches = st.lists(
    st.tuples(st.sampled_from(["orders", "inventory"]), st.lists(amounts, max_size=20)),
    max_size=6,
)


def exposed(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line]  # the library's start time


@given(batches)
def test_a_batch_histogram_exposes_what_observing_one_by_one_does(
    observed: list[tuple[str, list[float]]],
) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = BatchHistogram("fresh_seconds", "Freshness.", "projection", BOUNDS)
    ours.register(histogram)
    oracle = Histogram(
        "fresh_seconds", "Freshness.", ["projection"], buckets=BOUNDS, registry=theirs
    )
    for label, batch in observed:
        histogram.observe_all(label, batch)
        oracle.labels(label)  # a label with an empty batch shows, at zero, in both
        for amount in batch:
            oracle.labels(label).observe(amount)
    assert exposed(ours) == exposed(theirs)


def test_an_amount_on_a_bound_counts_in_that_bound() -> None:
    registry = CollectorRegistry()
    histogram = BatchHistogram("fresh_seconds", "Freshness.", "projection", (0.1, 1.0))
    registry.register(histogram)
    histogram.observe_all("orders", [0.1, 0.1, 1.0, 2.0])
    text = exposed(registry)
    assert 'fresh_seconds_bucket{le="0.1",projection="orders"} 2.0' in text
    assert 'fresh_seconds_bucket{le="1.0",projection="orders"} 3.0' in text
    assert 'fresh_seconds_bucket{le="+Inf",projection="orders"} 4.0' in text
    assert 'fresh_seconds_sum{projection="orders"} 3.2' in text
