"""What the command layer needs from storage, as protocols (UnitOfWork, IdempotencyStore,
Appender, Submitter), and what travels through them: a command's context, its Idempotency-Key claim
and the edge's Answer kept for it. The errors they raise are in commands.errors.

Infra implements them over the event store; unit tests implement them over dicts."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from uuid import UUID, uuid4

from commands.trace_context import current_traceparent
from domain.inventory import InventoryItem
from domain.order import Order

T = TypeVar("T")


@dataclass(frozen=True)
class CommandContext:
    """Recorded with every event the command appends."""

    correlation_id: str
    actor: str
    command_id: UUID = field(default_factory=uuid4)
    traceparent: str | None = None

    def metadata(self) -> dict[str, str]:
        recorded = {
            "correlation_id": self.correlation_id,
            "causation_id": str(self.command_id),
            "actor": self.actor,
        }
        # the command's span, carried on to the relay and projectors (taken when the bus
        # received the command: a group commit appends it from another thread)
        if traceparent := self.traceparent or current_traceparent():
            recorded["traceparent"] = traceparent
        return recorded

    def traced(self) -> CommandContext:
        """This context, remembering the current span (when one is recorded)."""
        traceparent = current_traceparent()
        return replace(self, traceparent=traceparent) if traceparent else self


@dataclass(frozen=True)
class IdempotencyClaim:
    """A request's Idempotency-Key (unique per scope, the caller) and its fingerprint."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """What the edge answered a command with, kept with the command's events when the
    command carries an Idempotency-Key, so that a retry is answered the same. Opaque to
    the command layer, which stores it and gives it back: `status` and `body` are the
    edge's to choose (for HTTP, the status code and the JSON body). The position of the
    command's last event is not in it (it exists only once the events are appended): it
    is handed back beside it."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IdempotentAnswer:
    """Saved with the command's events, in the same transaction, so a retry finds it."""

    claim: IdempotencyClaim
    answer: Answer


@dataclass(frozen=True)
class StoredAnswer:
    """A kept answer, with the position of the last event of the command it answered."""

    fingerprint: str
    answer: Answer
    position: int


class UnitOfWork(Protocol):
    """Loads aggregates once each and saves all their new events in one transaction."""

    def item(self, sku: str) -> InventoryItem: ...

    def has_item(self, sku: str) -> bool: ...

    def order(self, order_id: UUID) -> Order: ...

    def add(self, aggregate: InventoryItem | Order) -> None: ...

    def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
        """Appends every pending event atomically; returns the last event's position.
        Raises ConcurrencyConflict when another writer got there first."""
        ...


class IdempotencyStore(Protocol):
    def find(self, scope: str, key: str) -> StoredAnswer | None: ...


@dataclass(frozen=True)
class Decision(Generic[T]):
    """One attempt at a command for an appender: `decide` runs its handler over a unit of
    work (and, for an edge, renders the edge's Answer from its result); the appender
    commits what it changed, with that Answer when the command carries a claim."""

    decide: Callable[[UnitOfWork], T]
    context: CommandContext
    claim: IdempotencyClaim | None = None

    def kept(self, decided: T) -> IdempotentAnswer | None:
        """What to store with the command's events for its Idempotency-Key."""
        if self.claim is None:
            return None
        if not isinstance(decided, Answer):
            raise TypeError("a command with an Idempotency-Key must decide an Answer")
        return IdempotentAnswer(self.claim, decided)


class Appender(Protocol):
    def append(self, decision: Decision[T]) -> tuple[T, int] | StoredAnswer:
        """Decides and commits; returns what `decide` returned and the position of the
        command's last event, or the answer kept for the decision's claim by an earlier
        command. Raises what the handler raised, or ConcurrencyConflict to be retried."""
        ...


@runtime_checkable
class Submitter(Protocol):
    """An appender that decides and commits in a thread of its own: `submit` hands it the
    decision and returns at once, and the future settles as `Appender.append` would
    return or raise. An event loop awaits it without a worker thread of its own. A
    decision whose future is cancelled before the appender takes it is never decided."""

    def submit(self, decision: Decision[T]) -> Future[tuple[T, int] | StoredAnswer]: ...
