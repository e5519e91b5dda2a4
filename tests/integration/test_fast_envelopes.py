"""Envelopes built from stored events without validation equal what the library's own
decoder and a validating Envelope give: same fields, same JSON data."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from eventsourcing.utils import resolve_topic
from pydantic import TypeAdapter

from commands.ports import CommandContext
from domain.versions import upcast
from infra.bootstrap import WriteSide
from infra.eventstore.envelopes import decode_state, event_id, to_envelope
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import META_KEY
from schemas.commands import CancelOrder, OrderLineRequest, PayOrder, PlaceOrder, RegisterItem
from schemas.envelope import Envelope
from tests.commanding import placed as facts

CONTEXT = CommandContext(correlation_id="fast-envelopes", actor="tester")
LIBRARY = ("timestamp", "originator_topic", "class_version", META_KEY)


def reference(notification: Any, transcoder: Any, previous: int) -> Envelope:
    """The slow, validated way: the library's transcoder, then Envelope's validation."""
    state = transcoder.decode(notification.state)
    schema_version = upcast(resolve_topic(notification.topic), state)
    meta = state.get(META_KEY) or {}
    kind = notification.topic.split(":", 1)[1].split(".", 1)[1]
    data = {k: v for k, v in state.items() if k not in LIBRARY}
    return Envelope(
        event_id=event_id(notification.originator_id, notification.originator_version),
        type=kind,
        aggregate_type=kind.split(".", 1)[0],
        aggregate_id=notification.originator_id,
        version=notification.originator_version,
        position=notification.id,
        previous_position=previous,
        occurred_at=state["timestamp"],
        schema_version=schema_version,
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        actor=meta.get("actor"),
        data=TypeAdapter(dict[str, Any]).dump_python(data, mode="json"),
    )


def test_fast_envelopes_equal_validated_ones(side: WriteSide) -> None:
    side.bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=250, on_hand=9), CONTEXT)
    lines = (OrderLineRequest(sku="A", quantity=2),)
    for n in range(3):
        order_id = facts(
            side.bus.handle(PlaceOrder(customer_id=f"c{n}", lines=lines), CONTEXT)
        ).order_id
        if n == 1:
            side.bus.handle(CancelOrder(order_id=order_id, reason="changed mind"), CONTEXT)
        else:
            pay = PayOrder(order_id=order_id, amount_cents=500, payment_ref=f"p{n}")
            side.bus.handle(pay, CONTEXT)
    transcoder = side.app.mapper.transcoder
    notifications = side.app.recorder.select_notifications(start=1, limit=100)
    previous, compared = 0, 0
    for notification in notifications:
        fast = to_envelope(notification, transcoder, previous)
        expected = reference(notification, transcoder, previous)
        assert fast.model_dump() == expected.model_dump()
        assert fast == expected
        assert Envelope.model_validate_json(fast.model_dump_json()) == fast
        previous, compared = notification.id, compared + 1
    # with a UUID inside data (stock reserved for an order) and metadata on every event
    assert compared >= 12
    assert any("order_id" in n.state.decode() for n in notifications)


def test_transcoded_values_deep_inside_the_state_are_revived(side: WriteSide) -> None:
    transcoder = side.app.mapper.transcoder
    state = {
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "lines": [{"order_id": uuid4(), "price": Decimal("1.25")}],
        "note": 'a value that says "_type_" in text',
    }
    raw = transcoder.encode(state)
    decoded, custom = decode_state(raw, transcoder)
    assert decoded == transcoder.decode(raw) == state
    assert custom == {"timestamp", "lines"}


def test_a_scan_reads_what_batched_reads_read(side: WriteSide) -> None:
    side.bus.handle(RegisterItem(sku="S", name="s", unit_price_cents=3, on_hand=50), CONTEXT)
    for n in range(4):
        lines = (OrderLineRequest(sku="S", quantity=1),)
        side.bus.handle(PlaceOrder(customer_id=f"s{n}", lines=lines), CONTEXT)
    log = EventLog(side.app)
    batched = [e for batch in log.iterate(0, batch=3) for e in batch]
    scanned = [e for batch in log.scan(0, batch=4) for e in batch]
    assert len(batched) >= 12
    assert scanned == batched
    after = batched[4].position
    assert [e for batch in log.scan(after, batch=5) for e in batch] == batched[5:]


def test_a_scan_left_early_closes_and_the_next_reads_everything(side: WriteSide) -> None:
    """The scan fetches its next batch in a thread while the caller holds one: closing it
    early waits for that fetch and lets go of the cursor and its connection."""
    side.bus.handle(RegisterItem(sku="E", name="e", unit_price_cents=3, on_hand=50), CONTEXT)
    for n in range(3):
        lines = (OrderLineRequest(sku="E", quantity=1),)
        side.bus.handle(PlaceOrder(customer_id=f"e{n}", lines=lines), CONTEXT)
    log = EventLog(side.app)
    for _ in range(5):
        scan = log.scan(0, batch=2)
        first = next(scan)
        assert isinstance(scan, Generator)
        scan.close()
        assert [e.position for e in first] == [1, 2]
    batched = [e for batch in log.iterate(0, batch=3) for e in batch]
    assert [e for batch in log.scan(0, batch=2) for e in batch] == batched
