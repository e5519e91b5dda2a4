"""What both event-store recorders share: the rows they add beside the library's events
(the idempotent answer, one chain link per event) and the shapes the audit reads back.

The recorders themselves are `postgres_recorder.py` and `sqlite_recorder.py`: the library's
recorders, extended so that a command's answer and its events' links are written inside the
transaction that appends the events, so either all exist or none does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from commands.ports import Answer, IdempotentAnswer, StoredAnswer
from infra.audit.chain import ChainRow, canonical, link

IDEMPOTENCY_TABLE = "idempotency_keys"


@dataclass(frozen=True)
class LoggedEvent:
    """A stored event with its position, its predecessor in the log and when it was
    recorded: what audit answers are made of."""

    notification: Notification
    previous_position: int
    recorded_at: datetime
    hash: bytes = b""


@dataclass(frozen=True)
class AuditFilter:
    after: int = 0
    limit: int = 1000
    originator_id: UUID | None = None
    topics: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None


def chain_links(
    previous: tuple[int, bytes], ids: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[tuple[int, int, bytes]]:
    position, last = previous
    rows = []
    for notification_id, e in zip(ids, stored_events, strict=True):
        last = link(
            last,
            canonical(notification_id, e.originator_id, e.originator_version, e.topic, e.state),
        )
        rows.append((notification_id, position, last))
        position = notification_id
    return rows


def state_bytes(value: Any) -> bytes:
    """Stored state as bytes, whatever a tampering hand left in the column."""
    return value.encode() if isinstance(value, str) else bytes(value)


def chain_row(row: Any, position: int) -> ChainRow:
    event_bytes = None
    if row["event_position"] is not None:
        event_bytes = canonical(
            row["event_position"],
            row["originator_id"],
            row["originator_version"],
            row["topic"],
            state_bytes(row["state"]),
        )
    link_hash = bytes(row["hash"]) if row["hash"] is not None else None
    return ChainRow(position, event_bytes, row["previous_position"], link_hash)


def answer_row(answer: IdempotentAnswer, last: StoredEvent) -> tuple[Any, ...]:
    return (
        answer.claim.scope,
        answer.claim.key,
        answer.claim.fingerprint,
        answer.answer.status,
        json.dumps(answer.answer.body, separators=(",", ":")),
        str(last.originator_id),
        last.originator_version,
    )


def answer_rows(kwargs: dict[str, Any], events: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    """`idempotency`: one command's answer, tied to the last event; `answers` (group
    commit): each command's answer with the index of its own last event."""
    answer: IdempotentAnswer | None = kwargs.get("idempotency")
    pairs: Sequence[tuple[IdempotentAnswer, int]] = kwargs.get("answers", ())
    if answer is not None:
        pairs = [*pairs, (answer, len(events) - 1)]
    return [answer_row(a, events[last]) for a, last in pairs]


def stored_answer(fingerprint: str, status: int, body: Any, position: int) -> StoredAnswer:
    decoded = json.loads(body) if isinstance(body, str | bytes) else body
    return StoredAnswer(fingerprint, Answer(status, decoded), position)


def as_uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def uuid_or_none(value: str | None) -> UUID | None:
    return UUID(value) if value is not None else None


def sqlite_time(moment: datetime) -> str:
    """The form SQLite's strftime writes, so text comparison orders correctly."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
