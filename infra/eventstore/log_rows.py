"""Rows of the events table as the log scan fetches them, into envelopes a batch at a time.

Nearly every stored event has one shape: JSON whose only transcoded values are its
timestamp and top-level UUIDs (an order's id in a stock event), written at its class's
newest version. For those rows the loop below does what `stored_to_envelope` does, inline
and with less work: the server makes the event's id (uuid-ossp's uuid_generate_v5), or
where it cannot, writes the name the id is made from ("<aggregate id>:<version>"); a UUID
in `data` goes straight to the text its JSON-mode dump would give, and `data` is kept as
decoded since it holds JSON values only. Every other row (a value transcoded deeper or of
another type, a state that an upcaster must bring up to date) goes through
`stored_to_envelope` itself. tests/property/test_log_rows.py checks that both give the
same envelopes.

Two processes can share one pass over the log, each reading its own share of the
aggregates (infra/eventstore/log_shares.py, projections/split_fold.py): `decode_following`
decodes a share, whose rows are not consecutive in the log."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import chain
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import DatetimeAsISO, Transcoder, UUIDAsHex
from psycopg.sql import SQL, Composable, Literal

from domain.versions import VERSION_KEY
from infra.eventstore.envelopes import (
    EVENT_ID_NAMESPACE,
    EVENT_NAME_PREFIX,
    construct,
    event_id_of,
    kind_of,
    stored_to_envelope,
)
from infra.eventstore.event_store import META_KEY
from infra.eventstore.sealing import ALGORITHM, is_sealed
from schemas.envelope import Envelope

# What `decode_rows` takes, in this order; the last column is the event's id, made by the
# server where it has uuid-ossp, else the name its id is made from ("<aggregate id>:<version>").
LogRow = tuple[int, UUID, int, str, bytes, UUID | str]
_NAME = SQL("originator_id::text || ':' || originator_version")


def columns(event_id_function: Composable | None) -> Composable:
    """The columns of a `LogRow`; `event_id_function` is the server's uuid_generate_v5."""
    if event_id_function is None:
        named: Composable = _NAME
    else:
        named = SQL("{generate}({namespace}::uuid, {prefix} || {name})").format(
            generate=event_id_function,
            namespace=Literal(str(EVENT_ID_NAMESPACE)),
            prefix=Literal(EVENT_NAME_PREFIX),
            name=_NAME,
        )
    return SQL("notification_id, originator_id, originator_version, topic, state, {}").format(named)


_TRANSCODED = b'"_type_"'
_LOWER_HEX_32 = re.compile("[0-9a-f]{32}").fullmatch
_from_iso = datetime.fromisoformat
_SEALED = f'"{ALGORITHM}"'.encode()  # in the raw JSON of every state holding a sealed field


def decode_rows(rows: Sequence[LogRow], transcoder: Transcoder, previous: int) -> list[Envelope]:
    """Envelopes of consecutive log rows; `previous` is the position before the first."""
    return _decode(rows, chain((previous,), (row[0] for row in rows)), transcoder)


def decode_following(
    rows: Sequence[LogRow], predecessors: Iterable[int], transcoder: Transcoder
) -> list[Envelope]:
    """Envelopes of log rows that need not be consecutive (a share of the log,
    infra/eventstore/log_shares.py); `predecessors` gives each row's predecessor in the log."""
    return _decode(rows, predecessors, transcoder)


def _decode(
    rows: Sequence[LogRow], predecessors: Iterable[int], transcoder: Transcoder
) -> list[Envelope]:
    """`predecessors` gives each row's predecessor in the log, in step with `rows`."""
    names: dict[str, Any] = getattr(transcoder, "names", {})
    uuids_as_hex = isinstance(names.get("uuid_hex"), UUIDAsHex)
    iso = type(names.get("datetime_iso")) is DatetimeAsISO  # its decode is fromisoformat
    envelopes: list[Envelope] = []
    for (position, originator, version, topic, raw, name), previous in zip(
        rows, predecessors, strict=False
    ):
        kind = kind_of(topic)
        deeper = raw.count(_TRANSCODED)
        state: dict[str, Any] = orjson.loads(raw)
        stamp = state.pop("timestamp")
        if _transcoded(stamp):
            stamp = (
                _from_iso(stamp["_data_"])
                if iso and stamp["_type_"] == "datetime_iso"
                else names[stamp["_type_"]].decode(stamp["_data_"])
            )
            deeper -= 1
        if deeper and uuids_as_hex:
            deeper -= _uuids_to_text(state)
        schema_version = state.pop(VERSION_KEY, 1)
        if deeper or schema_version != kind.newest:
            envelopes.append(
                stored_to_envelope(position, originator, version, topic, raw, transcoder, previous)
            )
            continue
        meta: dict[str, str] = state.pop(META_KEY, None) or {}
        state.pop("originator_topic", None)
        envelopes.append(
            construct(
                {
                    "event_id": event_id_of(name) if isinstance(name, str) else name,
                    "type": kind.type,
                    "aggregate_type": kind.aggregate_type,
                    "aggregate_id": originator,
                    "version": version,
                    "position": position,
                    "previous_position": previous,
                    "occurred_at": stamp,
                    "schema_version": schema_version,
                    "correlation_id": meta.get("correlation_id"),
                    "causation_id": meta.get("causation_id"),
                    "actor": meta.get("actor"),
                    "traceparent": meta.get("traceparent"),
                    "data": state,
                    "sealed": _sealed(state) if _SEALED in raw else [],
                    "redacted": [],
                }
            )
        )
    return envelopes


def _transcoded(value: Any) -> bool:
    return type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value


def _uuids_to_text(state: dict[str, Any]) -> int:
    """Top-level UUIDs (stored as their 32 hex digits) replaced by their text, as the
    JSON-mode dump writes them; returns how many."""
    replaced = 0
    for key, value in state.items():
        if type(value) is not dict or value.get("_type_") != "uuid_hex" or len(value) != 2:
            continue
        hexed = value.get("_data_")
        if type(hexed) is not str:
            continue
        if _LOWER_HEX_32(hexed):  # as UUIDAsHex writes them: already UUID.__str__'s digits
            state[key] = f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"
            replaced += 1
        elif len(hexed) == 32 and hexed.isalnum():
            digits = f"{int(hexed, 16):032x}"  # as UUID.__str__ writes them
            state[key] = (
                f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
            )
            replaced += 1
    return replaced


def _sealed(data: dict[str, Any]) -> list[str]:
    return [k for k, v in data.items() if type(v) is dict and is_sealed(v)]
