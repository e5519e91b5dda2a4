"""Checking an export file's chain on its own, before anything of it is written.

Each line's stored bytes must give its link hash from the line before (as in the store,
infra/audit/chain.py), its readable envelope must be what those bytes say, and the file
must end with a head line naming the last line. Pure: no store is read."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import Notification, Transcoder

from infra.audit.chain import ChainRow, Verification, canonical, verify
from infra.audit.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    check_signature,
    from_json,
    reach,
)
from infra.eventstore.envelopes import to_envelope
from schemas.audit import CheckpointFile, ExportedEvent, ExportHead
from schemas.envelope import Envelope

ENVELOPE_FIELDS = set(Envelope.model_fields)


def stored_state(event: ExportedEvent) -> bytes:
    return base64.b64decode(event.state, validate=True)


def chain_row(event: ExportedEvent) -> ChainRow:
    position, version = event.position, event.version
    event_bytes = canonical(position, event.aggregate_id, version, event.topic, stored_state(event))
    return ChainRow(position, event_bytes, event.previous_position, bytes.fromhex(event.hash))


def _readable_matches(event: ExportedEvent, transcoder: Transcoder) -> bool:
    notification = Notification(
        id=event.position,
        originator_id=event.aggregate_id,
        originator_version=event.version,
        topic=event.topic,
        state=stored_state(event),
    )
    try:
        derived = to_envelope(notification, transcoder, event.previous_position)
    except Exception:  # bytes that do not decode are no event at all
        return False
    return derived == Envelope.model_validate(event.model_dump(include=ENVELOPE_FIELDS))


def check_export(
    items: Iterable[ExportedEvent | ExportHead | CheckpointFile],
    transcoder: Transcoder,
    public: Ed25519PublicKey | None = None,
) -> Verification:
    """Walks the file from the start of the log (a complete export) and stops at the first
    line that breaks: `first_bad_position` names it. The file's chain must pass through
    each checkpoint it carries; their signatures are checked when `public` is given."""
    state = Verification()
    head: ExportHead | None = None
    carried: list[Checkpoint] = []
    for item in items:
        if head is not None:
            state.fail(head.position, "lines follow the head line")
            return state
        if isinstance(item, ExportHead):
            head = item
            continue
        if isinstance(item, CheckpointFile):
            if state.checked:
                state.fail(item.position, "a checkpoint line among the events")
                return state
            try:
                anchor = from_json(item.model_dump_json())
                if public is not None:
                    check_signature(anchor, public)
            except InvalidCheckpoint as bad:
                state.fail(item.position, bad.detail)
                return state
            carried.append(anchor)
            carried.sort(key=lambda c: c.position)
            continue
        try:
            row = chain_row(item)
        except ValueError:
            state.fail(item.position, "the stored bytes or the hash are not readable")
            return state
        state = verify([row], state)
        if state.ok and not _readable_matches(item, transcoder):
            state.fail(item.position, "the line's envelope differs from its stored event: edited")
        state = _through_checkpoints(state, carried)
        if not state.ok:
            return state
    state = _judge_end(state, head)
    for anchor in carried:  # beyond the file's last line
        state = reach(anchor, state)
    return state


def _through_checkpoints(state: Verification, carried: list[Checkpoint]) -> Verification:
    """Judges, and drops, the carried checkpoints the walk has now reached."""
    while state.ok and carried and carried[0].position <= state.last_position:
        anchor = carried.pop(0)
        if anchor.position < state.last_position:
            state.fail(anchor.position, f"{anchor.describe()}: the file has no event there")
        else:
            state = reach(anchor, state)
    return state


def _judge_end(state: Verification, head: ExportHead | None) -> Verification:
    if not state.ok:
        return state
    if head is None:
        state.fail(
            state.last_position + 1,
            f"the file ends after position {state.last_position} without its head line: "
            "it was cut short",
        )
    elif (head.position, head.hash, head.events) != (
        state.last_position,
        state.last_hash.hex(),
        state.checked,
    ):
        state.fail(
            head.position,
            f"the head names position {head.position} ({head.events} events); the file's "
            f"chain ends at {state.last_position} ({state.checked} events): lines are missing",
        )
    return state
