"""Stored events to envelopes: the one translation every reader of the log goes through."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import Notification, Transcoder
from eventsourcing.utils import resolve_topic
from pydantic import TypeAdapter

from infra.event_store import META_KEY
from schemas.envelope import AggregateType, Envelope

_LIBRARY_FIELDS = ("timestamp", "originator_topic", "class_version", META_KEY)
_json_data: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def event_type(topic: str) -> str:
    """'domain.order:Order.order.created' -> 'order.created' (the @event name)."""
    return topic.split(":", 1)[1].split(".", 1)[1]


def event_id(aggregate_id: UUID, version: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"orderflow:event:{aggregate_id}:{version}")


def to_envelope(notification: Notification, transcoder: Transcoder, previous: int) -> Envelope:
    state: dict[str, Any] = transcoder.decode(notification.state)
    meta: dict[str, str] = state.get(META_KEY) or {}
    kind = event_type(notification.topic)
    aggregate_id = UUID(str(notification.originator_id))
    data = {k: v for k, v in state.items() if k not in _LIBRARY_FIELDS}
    return Envelope(
        event_id=event_id(aggregate_id, notification.originator_version),
        type=kind,
        aggregate_type=_aggregate_type(kind),
        aggregate_id=aggregate_id,
        version=notification.originator_version,
        position=notification.id,
        previous_position=previous,
        occurred_at=state["timestamp"],
        schema_version=getattr(resolve_topic(notification.topic), "class_version", 1),
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        actor=meta.get("actor"),
        data=_json_data.dump_python(data, mode="json"),
    )


def _aggregate_type(kind: str) -> AggregateType:
    prefix = kind.split(".", 1)[0]
    if prefix == "order":
        return "order"
    if prefix == "inventory":
        return "inventory"
    raise ValueError(f"event type {kind!r} belongs to no known aggregate")
