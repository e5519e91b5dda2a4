"""What the group appender (group_commit.py) holds of each command while it decides a
batch, and how it sorts a batch's commands."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from commands.ports import Decision, StoredAnswer
from infra.eventstore.group_batch import Event

Outcome = tuple[Any, int] | StoredAnswer  # what it decided and its last event's position


@dataclass(eq=False)
class Job:
    """One command of a batch, and the future its caller waits on."""

    decision: Decision[Any]
    future: Future[Outcome] = field(default_factory=Future)
    decided: Any = None
    events: list[Event] = field(default_factory=list)
    looked: set[UUID] = field(default_factory=set)  # the aggregates its decision rests on

    def settle(self, outcome: Outcome | BaseException) -> None:
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


@dataclass
class Plan:
    """A batch's commands, sorted by what becomes of them."""

    shared_read: float  # events the batch's catch-up read, per command
    accepted: list[Job] = field(default_factory=list)  # to append, in this order
    claimed: set[tuple[str, str]] = field(default_factory=set)  # the accepted ones' keys
    later: list[Job] = field(default_factory=list)  # the same Idempotency-Key again
    alone: list[Job] = field(default_factory=list)  # decided nothing to append

    def take_out(self, out: list[Job]) -> None:
        gone = set(map(id, out))
        self.accepted = [job for job in self.accepted if id(job) not in gone]
        self.claimed = {(c.scope, c.key) for job in self.accepted if (c := job.decision.claim)}
