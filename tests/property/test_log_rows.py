"""The log scan's fast decoding (infra/eventstore/log_rows.py) gives the envelopes that
`stored_to_envelope`, the one general translation, gives for the same stored events:
events of every shape drawn by hypothesis, stored in PostgreSQL, read both ways."""

from __future__ import annotations

import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.ports import CommandContext
from infra.bootstrap import write_side
from infra.eventstore import log_rows
from infra.eventstore.envelopes import TOPIC_BY_TYPE
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import META_KEY, OrderFlowApplication, open_event_store
from infra.eventstore.log_shares import CUT
from infra.settings import Settings
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, RegisterItem
from schemas.envelope import Envelope
from tests.commanding import placed as facts
from tests.log_holes import burn

pytestmark = pytest.mark.postgres

LIBRARY_KEYS = {"timestamp", "originator_topic", "class_version", META_KEY}
SEALED = {"sealed": "A256GCM", "key_id": "key-1", "ciphertext": "c2VjcmV0"}

names = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
    lambda name: name not in LIBRARY_KEYS
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.just('says "_type_" in text'),
)
stamps = st.datetimes(
    min_value=datetime(2000, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(0))]),
)
transcoded = st.one_of(st.uuids(), st.decimals(allow_nan=False, allow_infinity=False), stamps)
nested = st.recursive(
    st.one_of(scalars, transcoded),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
# mostly the shapes the domain writes (plain values, top-level UUIDs), sometimes anything
values = st.one_of(scalars, st.uuids(), st.uuids(), st.just(SEALED), nested)
metas = st.dictionaries(
    st.sampled_from(["correlation_id", "causation_id", "actor", "traceparent"]),
    st.text(max_size=36),
)


@st.composite
def stored_states(draw: st.DrawFn) -> tuple[str, int, dict[str, Any]]:
    """(topic, version, state) as the library stores an event's state."""
    kind = draw(st.sampled_from(sorted(TOPIC_BY_TYPE)))
    version = draw(st.integers(min_value=1, max_value=4))
    state: dict[str, Any] = {"timestamp": draw(stamps)}
    if version == 1 and draw(st.booleans()):
        state["originator_topic"] = "domain.order:Order"
    state.update(draw(st.dictionaries(names, values, max_size=5)))
    if kind == "order.created":  # the one event with an upcaster (v1 -> v2)
        stored_version = draw(st.sampled_from([None, 1, 2]))
        if stored_version is not None:
            state["class_version"] = stored_version
    meta = draw(st.none() | metas)
    if meta is not None:
        state[META_KEY] = meta
    return TOPIC_BY_TYPE[kind], version, state


@pytest.fixture
def app(postgres_settings: Settings) -> Iterator[OrderFlowApplication]:
    opened = open_event_store(postgres_settings)
    yield opened
    opened.close()


def both_ways(log: EventLog, after: int) -> tuple[list[Envelope], list[Envelope]]:
    scanned = [e for batch in log.scan(after, batch=7) for e in batch]
    general = [e for batch in log.iterate(after, batch=7) for e in batch]
    return scanned, general


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(stored_states(), min_size=1, max_size=12))
def test_fast_decoding_equals_the_general_one(
    app: OrderFlowApplication, events: list[tuple[str, int, dict[str, Any]]]
) -> None:
    log = EventLog(app)
    after = log.head()
    transcoder = app.mapper.transcoder
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=uuid4(),
                originator_version=version,
                topic=topic,
                state=transcoder.encode(state),
            )
            for topic, version, state in events
        ]
    )
    scanned, general = both_ways(log, after)
    assert len(scanned) == len(events)
    assert scanned == general
    assert [e.model_dump_json() for e in scanned] == [e.model_dump_json() for e in general]
    assert [e.model_fields_set for e in scanned] == [e.model_fields_set for e in general]


def test_the_domains_events_take_the_fast_path(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the write side stores (metadata, UUIDs in stock events, the newest order.created)
    is decoded inline: the general translation is never called."""
    side = write_side(postgres_settings)
    context = CommandContext(correlation_id="fast", actor="tester")
    side.bus.handle(RegisterItem(sku="F", name="f", unit_price_cents=5, on_hand=9), context)
    lines = (OrderLineRequest(sku="F", quantity=2),)
    order_id: UUID = facts(
        side.bus.handle(PlaceOrder(customer_id="c", lines=lines), context)
    ).order_id
    side.bus.handle(PayOrder(order_id=order_id, amount_cents=10, payment_ref="p"), context)
    log = EventLog(side.app)
    general = [e for batch in log.iterate(0) for e in batch]

    def refuse(*_: object) -> Envelope:
        raise AssertionError("a common shape took the general path")

    monkeypatch.setattr(log_rows, "stored_to_envelope", refuse)
    scanned = [e for batch in log.scan(0) for e in batch]
    side.close()
    assert scanned == general
    assert {e.type for e in scanned} >= {"inventory.stock_reserved", "order.created", "order.paid"}
    assert any(isinstance(e.data.get("order_id"), str) for e in scanned)


def owner_of(side: int) -> UUID:
    """A fresh aggregate id in share `side` (0 below the cut, 1 from it), by its top bit;
    side 2 is the cut itself, the lowest id of share 1."""
    top = 1 << 127
    return CUT if side == 2 else UUID(int=uuid4().int & (top - 1) | side * top)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(stored_states(), st.integers(0, 2)), min_size=1, max_size=12),
    st.lists(st.sampled_from([0, 1, 1, 0, 2]), min_size=1, max_size=3),
)
def test_two_share_scans_give_the_general_envelopes_between_them(
    app: OrderFlowApplication,
    events: list[tuple[tuple[str, int, dict[str, Any]], int]],
    sides: list[int],
) -> None:
    """The two shares a split rebuild reads (one on a connection of its own, as in the
    forked helper) are, together, the general translation's envelopes, each naming its
    predecessor in the whole log, holes included; every aggregate in the share its id
    says. The aggregates' ids are drawn on both sides of the cut, sometimes the cut."""
    owners = [owner_of(side) for side in sides]
    log = EventLog(app)
    after = log.head()
    transcoder = app.mapper.transcoder
    versions = {  # the cut is one aggregate in every example: it goes on from its last
        owner: max((e.originator_version for e in app.recorder.select_events(owner)), default=0)
        for owner in owners
    }
    for n, ((topic, _, state), holes) in enumerate(events):
        burn(app, holes)
        owner = owners[n % len(owners)]
        versions[owner] += 1
        stored = StoredEvent(
            originator_id=owner,
            originator_version=versions[owner],
            topic=topic,
            state=transcoder.encode(state),
        )
        app.recorder.insert_events([stored])
    general = [e for batch in log.iterate(after, batch=5) for e in batch]
    plan = log.shares(log.head())
    shares = [
        [e for batch in log.share_scan(share, plan, batch=5, forked=share == 1) for e in batch]
        for share in (0, 1)
    ]
    new = [[e for e in share if e.position > after] for share in shares]
    assert sorted(new[0] + new[1], key=lambda e: e.position) == general
    assert [e.model_dump_json() for e in sorted(new[0] + new[1], key=lambda e: e.position)] == [
        e.model_dump_json() for e in general
    ]
    for number, share in enumerate(shares):
        assert [e.position for e in share] == sorted(e.position for e in share)
        assert {e.aggregate_id.int >= 1 << 127 for e in share} <= {number == 1}
    if any(holes for _, holes in events):  # the predecessors across a hole were checked
        assert any(e.previous_position != e.position - 1 for e in general)
