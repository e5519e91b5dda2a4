"""The unit of work over the event store: an identity map of loaded aggregates, saved
together in one atomic append with the library's optimistic concurrency."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from commands.errors import ConcurrencyConflict
from commands.ports import CommandContext, IdempotentAnswer, StoredAnswer
from domain.inventory import InventoryItem
from domain.order import Order
from infra.eventstore.aggregate_lookup import AggregateLookup
from infra.eventstore.event_store import OrderFlowApplication
from infra.observability import metrics

A = TypeVar("A", InventoryItem, Order)


class EventStoreUnitOfWork(AggregateLookup):
    def __init__(self, app: OrderFlowApplication) -> None:
        self._app = app
        self._seen: dict[UUID, InventoryItem | Order] = {}

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        if aggregate_id not in self._seen:
            try:
                self._seen[aggregate_id] = self._app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
        found = self._seen[aggregate_id]
        return found if isinstance(found, kind) else None

    def add(self, aggregate: InventoryItem | Order) -> None:
        self._seen[aggregate.id] = aggregate

    def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
        # Appended in the order they happened across aggregates, so readers of the log see
        # an order created before the stock reserved for it. The aggregates go along too
        # (with no events left to collect) so the library can snapshot them.
        pending = sorted(
            (e for a in self._seen.values() for e in a.collect_events()), key=lambda e: e.timestamp
        )
        try:
            recordings = self._app.save_decided(
                pending, list(self._seen.values()), metadata=context.metadata(), idempotency=answer
            )
        except IntegrityError as conflict:
            # a version already taken, or the same Idempotency-Key committed concurrently
            raise ConcurrencyConflict(str(conflict)) from conflict
        metrics.EVENTS_APPENDED.inc(len(recordings))
        return max(r.notification.id for r in recordings)


class EventStoreIdempotency:
    def __init__(self, app: OrderFlowApplication) -> None:
        self._recorder = app.orderflow_recorder

    def find(self, scope: str, key: str) -> StoredAnswer | None:
        return self._recorder.find_answer(scope, key)

    def purge(self, before: datetime) -> int:
        """Forgets answers stored before `before`: their keys become new requests."""
        return self._recorder.purge_answers(before)
