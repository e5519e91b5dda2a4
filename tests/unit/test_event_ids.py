"""Event ids: the fast derivation gives exactly the standard library's uuid5."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from hypothesis import given
from hypothesis import strategies as st

from infra.eventstore.envelopes import event_id


@given(st.uuids(), st.integers(min_value=1, max_value=2**40))
def test_event_id_is_uuid5_of_aggregate_and_version(aggregate_id: UUID, version: int) -> None:
    expected = uuid5(NAMESPACE_URL, f"orderflow:event:{aggregate_id}:{version}")
    made = event_id(aggregate_id, version)
    assert made == expected
    assert (made.version, made.variant, str(made), hash(made)) == (
        expected.version,
        expected.variant,
        str(expected),
        hash(expected),
    )
