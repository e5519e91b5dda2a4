"""Stored events to envelopes: the one translation every reader of the log goes through."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, SafeUUID

import orjson
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import Notification, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic
from pydantic import BaseModel, TypeAdapter

from domain.inventory import InventoryItem
from domain.order import Order
from domain.versions import VERSION_KEY, upcast, version_of
from infra.eventstore.event_store import META_KEY
from infra.eventstore.sealing import Keys, is_sealed, open_sealed, personal_data_of
from schemas.envelope import AggregateType, Envelope
from schemas.events import PAYLOAD_VERSIONS

_LIBRARY_FIELDS = frozenset({"timestamp", "originator_topic", "class_version", META_KEY})
_json_data: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


AGGREGATES: dict[AggregateType, type[Aggregate]] = {"order": Order, "inventory": InventoryItem}
EVENT_CLASSES: dict[str, type[CanMutateAggregate[UUID]]] = {
    value.__name__: value
    for aggregate in AGGREGATES.values()
    for value in vars(aggregate).values()
    if isinstance(value, type) and issubclass(value, CanMutateAggregate) and "." in value.__name__
}
TOPIC_BY_TYPE: dict[str, str] = {name: get_topic(cls) for name, cls in EVENT_CLASSES.items()}


def declared_upcasters() -> set[tuple[str, int]]:
    """(type, N) for every upcaster from version N to N + 1 the domain's events declare."""
    return {
        (name, n)
        for name, cls in EVENT_CLASSES.items()
        for n in range(1, version_of(cls))
        if callable(getattr(cls, f"upcast_v{n}_v{n + 1}", None))
    }


def event_type(topic: str) -> str:
    """'domain.order:Order.order.created' -> 'order.created' (the @event name)."""
    return topic.split(":", 1)[1].split(".", 1)[1]


EVENT_ID_NAMESPACE = NAMESPACE_URL
EVENT_NAME_PREFIX = "orderflow:event:"  # event_id = uuid5(namespace, prefix + "<id>:<version>")
_EVENT_ID_PREFIX = hashlib.sha1(
    EVENT_ID_NAMESPACE.bytes + EVENT_NAME_PREFIX.encode(), usedforsecurity=False
)
_VARIANT_AND_VERSION = (0xC000 << 48) | (0xF000 << 64)
_RFC_4122_V5 = (0x8000 << 48) | (5 << 76)
_KEPT_BITS = ~_VARIANT_AND_VERSION
_from_bytes = int.from_bytes


def event_id(aggregate_id: UUID, version: int) -> UUID:
    """uuid5(EVENT_ID_NAMESPACE, f"{EVENT_NAME_PREFIX}{aggregate_id}:{version}")."""
    return event_id_of(f"{aggregate_id}:{version}")


def event_id_of(name: str) -> UUID:
    """`event_id` of the name "<aggregate id>:<version>", made without the standard
    library's argument checks (a third of a log read's time went into them)."""
    digest = _EVENT_ID_PREFIX.copy()
    digest.update(name.encode())
    made = _new(UUID)
    _set_uuid_int(made, _from_bytes(digest.digest()[:16]) & _KEPT_BITS | _RFC_4122_V5)
    _set_uuid_safe(made, _SAFE_UNKNOWN)
    return made


# The slots' own setters: what object.__setattr__ finds, without looking them up each time.
_new = object.__new__
_set_uuid_int = vars(UUID)["int"].__set__
_set_uuid_safe = vars(UUID)["is_safe"].__set__
_SAFE_UNKNOWN = SafeUUID.unknown


def decode_state(
    raw: bytes, transcoder: Transcoder
) -> tuple[dict[str, Any], set[str] | frozenset[str]]:
    """What `transcoder.decode` gives, at orjson's speed; and the top-level keys whose
    values needed the transcoder (a UUID, a datetime...): the rest is plain JSON."""
    state: dict[str, Any] = orjson.loads(raw)
    names: dict[str, Transcoding] = getattr(transcoder, "names", {})
    deeper = raw.count(b'"_type_"')
    timestamp: Any = state.get("timestamp")
    if deeper == 1 and _transcoded(timestamp):  # the usual case: only the timestamp
        state["timestamp"] = names[timestamp["_type_"]].decode(timestamp["_data_"])
        return state, _TIMESTAMP_ONLY
    custom: set[str] = set()
    for key, value in state.items():
        if _transcoded(value):
            state[key] = names[value["_type_"]].decode(value["_data_"])
            custom.add(key)
            deeper -= 1
    if deeper <= 0:  # the usual case: only the timestamp was transcoded
        return state, custom

    def revive(value: Any) -> Any:
        if _transcoded(value):
            custom.add(key)
            return names[value["_type_"]].decode(revive(value["_data_"]))
        if isinstance(value, dict):
            return {k: revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [revive(v) for v in value]
        return value

    for key, value in state.items():
        if isinstance(value, dict | list):
            state[key] = revive(value)
    return state, custom


_TIMESTAMP_ONLY = frozenset({"timestamp"})


def _transcoded(value: Any) -> bool:
    return type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value


def construct(values: dict[str, Any]) -> Envelope:
    """`Envelope.model_construct` for values known to be complete and valid, without its
    per-field loop (a fifth of a log read's time)."""
    envelope = _new(Envelope)
    _set_model_dict(envelope, values)
    # One set shared by every envelope: pydantic reads it, and copies it before changing
    # it (model_copy); a new set per envelope was a tenth of constructing one.
    _set_fields_set(envelope, _ALL_FIELDS_SET)
    _set_extra(envelope, None)
    _set_private(envelope, None)
    return envelope


_set_model_dict = vars(BaseModel)["__dict__"].__set__
_set_fields_set = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private = vars(BaseModel)["__pydantic_private__"].__set__
_ALL_FIELDS_SET = set(Envelope.model_fields)


@dataclass(frozen=True)
class EventKind:
    """What a stored event's topic says, worked out once per topic."""

    cls: type
    type: str
    aggregate_type: AggregateType
    newest: int  # the class's schema version


@cache
def kind_of(topic: str) -> EventKind:
    cls = resolve_topic(topic)
    kind = event_type(topic)
    return EventKind(cls, kind, _aggregate_type(kind), version_of(cls))


def to_envelope(notification: Notification, transcoder: Transcoder, previous: int) -> Envelope:
    return stored_to_envelope(
        notification.id,
        notification.originator_id,
        notification.originator_version,
        notification.topic,
        notification.state,
        transcoder,
        previous,
    )


def stored_to_envelope(
    position: int,
    originator: UUID | str,
    version: int,
    topic: str,
    raw: bytes,
    transcoder: Transcoder,
    previous: int,
) -> Envelope:
    """Always in the newest shape: stored state of an older version is upcast, as the
    library does for aggregates, and `schema_version` says which shape `data` has.

    Built without validation: every value comes from a stored event that the domain's own
    classes wrote, so checking them again would only repeat the checks made when writing."""
    state, custom = decode_state(raw, transcoder)
    kind = kind_of(topic)
    current = kind.newest == 1 and VERSION_KEY not in state  # nothing to upcast
    schema_version = 1 if current else upcast(kind.cls, state)
    occurred_at = state.pop("timestamp")
    meta: dict[str, str] = state.pop(META_KEY, None) or {}
    state.pop("originator_topic", None)
    data = state  # what is left once the library's fields are taken out
    aggregate_id = originator if isinstance(originator, UUID) else UUID(str(originator))
    plain = schema_version == 1 and custom <= _LIBRARY_FIELDS
    return construct(
        {
            "event_id": event_id(aggregate_id, version),
            "type": kind.type,
            "aggregate_type": kind.aggregate_type,
            "aggregate_id": aggregate_id,
            "version": version,
            "position": position,
            "previous_position": previous,
            "occurred_at": occurred_at,
            "schema_version": schema_version,
            "correlation_id": meta.get("correlation_id"),
            "causation_id": meta.get("causation_id"),
            "actor": meta.get("actor"),
            "traceparent": meta.get("traceparent"),
            "data": data if plain else _json_data.dump_python(data, mode="json"),
            "sealed": [k for k, v in data.items() if type(v) is dict and is_sealed(v)],
            "redacted": [],
        }
    )


def reveal(envelope: Envelope, keys: Keys) -> Envelope:
    """The envelope with its sealed fields in clear, or null and named in `redacted`
    when the subject was forgotten: what people (auditors, the API) are shown."""
    declared = personal_data_of(AGGREGATES[envelope.aggregate_type])
    if not envelope.sealed or declared is None:
        return envelope
    data, redacted = open_sealed(envelope.data, declared, keys)
    return envelope.model_copy(update={"data": data, "sealed": [], "redacted": redacted})


def _aggregate_type(kind: str) -> AggregateType:
    prefix = kind.split(".", 1)[0]
    if prefix == "order":
        return "order"
    if prefix == "inventory":
        return "inventory"
    raise ValueError(f"event type {kind!r} belongs to no known aggregate")


def to_stored_event(envelope: Envelope, transcoder: Transcoder) -> StoredEvent:
    """The inverse of to_envelope: what an import writes back into an empty store. An
    export made by an older version is stored in its own shape and upcast when read."""
    versions = PAYLOAD_VERSIONS.get(envelope.type, {})
    if envelope.schema_version not in versions:
        raise ValueError(f"{envelope.type} has no schema version {envelope.schema_version}")
    state: dict[str, Any] = {"timestamp": envelope.occurred_at}
    if envelope.version == 1:
        state["originator_topic"] = get_topic(AGGREGATES[envelope.aggregate_type])
    # a sealed field is checked by its subject's key when opened, not by the payload's shape
    sealed = {k: envelope.data[k] for k in envelope.sealed}
    clear = {**envelope.data, **dict.fromkeys(sealed)}
    state.update(versions[envelope.schema_version].model_validate(clear).model_dump())
    state.update(sealed)
    if envelope.schema_version > 1:
        state[VERSION_KEY] = envelope.schema_version
    meta = {
        "correlation_id": envelope.correlation_id,
        "causation_id": envelope.causation_id,
        "actor": envelope.actor,
        "traceparent": envelope.traceparent,
    }
    if any(meta.values()):
        state[META_KEY] = {k: v for k, v in meta.items() if v is not None}
    return StoredEvent(
        originator_id=envelope.aggregate_id,
        originator_version=envelope.version,
        topic=TOPIC_BY_TYPE[envelope.type],
        state=transcoder.encode(state),
    )
