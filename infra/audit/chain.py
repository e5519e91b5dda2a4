"""The tamper-evident chain over the event log.

Each appended event gets a link: sha256(previous link's hash || the event's canonical
bytes), with the position of the event before it. Links are written by the recorders in
the transaction that appends the events, under the lock that orders appends, so the chain
has no gaps or forks whatever the number of writers. Editing an event's bytes breaks its
link; deleting an event (with or without its link) breaks the next one."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

GENESIS = bytes(32)
TABLE = "orderflow_audit"


def canonical(
    position: int, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> bytes:
    return b"|".join(
        [
            str(position).encode(),
            str(originator_id).encode(),
            str(version).encode(),
            topic.encode(),
            state,
        ]
    )


def link(previous_hash: bytes, event_bytes: bytes) -> bytes:
    return hashlib.sha256(previous_hash + event_bytes).digest()


@dataclass(frozen=True)
class ChainRow:
    """An event joined to its link; either side is None when one of them is missing."""

    position: int
    event_bytes: bytes | None
    previous_position: int | None
    hash: bytes | None


@dataclass
class Verification:
    ok: bool = True
    checked: int = 0
    last_position: int = 0
    last_hash: bytes = GENESIS
    first_bad_position: int | None = None
    reason: str | None = None
    checkpoint: str | None = None  # the id of the checkpoint walked through, if any

    def fail(self, position: int, reason: str) -> None:
        self.ok, self.first_bad_position, self.reason = False, position, reason


def verify(rows: Iterable[ChainRow], state: Verification) -> Verification:
    """Walks rows in position order on from `state`, stopping at the first break."""
    for row in rows:
        if row.event_bytes is None:
            state.fail(row.position, "a link without its event: the event was deleted")
        elif row.hash is None:
            state.fail(row.position, "an event without a link: it was added around the chain")
        elif row.previous_position != state.last_position:
            state.fail(
                row.position,
                f"the link follows position {row.previous_position}, "
                f"the log has {state.last_position}: an event was removed",
            )
        elif link(state.last_hash, row.event_bytes) != row.hash:
            state.fail(row.position, "the event's bytes do not match its link: it was altered")
        if not state.ok:
            return state
        assert row.hash is not None
        state.checked += 1
        state.last_position, state.last_hash = row.position, row.hash
    return state
