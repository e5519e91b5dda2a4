"""What command handlers need from storage, as protocols (the errors they raise are in
commands.errors).

Infra implements them over the event store; unit tests implement them over dicts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from uuid import UUID, uuid4

from commands.trace_context import current_traceparent
from domain.inventory import InventoryItem
from domain.order import Order


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
class IdempotentAnswer:
    """Saved with the command's events, in the same transaction, so a retry finds it."""

    claim: IdempotencyClaim
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status_code: int
    body: dict[str, Any]


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
    def find(self, scope: str, key: str) -> StoredResponse | None: ...


@dataclass(frozen=True)
class Decision:
    """One attempt at a command for an appender: `decide` runs its handler over a unit of
    work and returns the answer's body; the appender commits what it changed."""

    decide: Callable[[UnitOfWork], dict[str, Any]]
    context: CommandContext
    claim: IdempotencyClaim | None = None
    status_code: int = 200

    def answer(self, body: dict[str, Any]) -> IdempotentAnswer | None:
        return IdempotentAnswer(self.claim, self.status_code, body) if self.claim else None


class Appender(Protocol):
    def append(self, decision: Decision) -> tuple[dict[str, Any], int]:
        """Decides and commits; returns the body and the position of the command's last
        event. Raises what the handler raised, or ConcurrencyConflict to be retried."""
        ...
