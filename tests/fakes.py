"""In-memory stand-ins for the event store, for instant handler and bus tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from commands.errors import ConcurrencyConflict, UnknownOrder, UnknownSku
from commands.ports import CommandContext, IdempotentAnswer, StoredAnswer
from domain.inventory import InventoryItem
from domain.order import Order

Aggregate = InventoryItem | Order


@dataclass
class FakeStore:
    aggregates: dict[UUID, Aggregate] = field(default_factory=dict)
    log: list[DomainEventProtocol[UUID]] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)
    answers: dict[tuple[str, str], StoredAnswer] = field(default_factory=dict)
    commits: int = 0
    conflicts_to_inject: int = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def find(self, scope: str, key: str) -> StoredAnswer | None:
        return self.answers.get((scope, key))

    def item(self, sku: str) -> InventoryItem:
        found = self.aggregates[InventoryItem.create_id(sku)]
        assert isinstance(found, InventoryItem)
        return found

    def order(self, order_id: UUID) -> Order:
        found = self.aggregates[order_id]
        assert isinstance(found, Order)
        return found


class FakeUnitOfWork:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.seen: dict[UUID, Aggregate] = {}

    def _get(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id not in self.seen:
            stored = self.store.aggregates.get(aggregate_id)
            if stored is None:
                return None
            self.seen[aggregate_id] = copy.deepcopy(stored)
        return self.seen[aggregate_id]

    def item(self, sku: str) -> InventoryItem:
        item = self._get(InventoryItem.create_id(sku))
        if not isinstance(item, InventoryItem):
            raise UnknownSku(sku)
        return item

    def has_item(self, sku: str) -> bool:
        return isinstance(self._get(InventoryItem.create_id(sku)), InventoryItem)

    def order(self, order_id: UUID) -> Order:
        order = self._get(order_id)
        if not isinstance(order, Order):
            raise UnknownOrder(order_id)
        return order

    def add(self, aggregate: Aggregate) -> None:
        self.seen[aggregate.id] = aggregate

    def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
        if self.store.conflicts_to_inject > 0:
            self.store.conflicts_to_inject -= 1
            raise ConcurrencyConflict("injected")
        pending = {agg_id: agg.collect_events() for agg_id, agg in self.seen.items()}
        for agg_id, events in pending.items():
            stored = self.store.aggregates.get(agg_id)
            base_version = self.seen[agg_id].version - len(events)
            if (stored.version if stored else 0) != base_version:
                raise ConcurrencyConflict(f"{agg_id} moved on")
        if answer is not None and (answer.claim.scope, answer.claim.key) in self.store.answers:
            raise ConcurrencyConflict("idempotency key taken")
        for agg_id, events in pending.items():
            if events:
                self.store.aggregates[agg_id] = copy.deepcopy(self.seen[agg_id])
        new_events = sorted(
            (e for events in pending.values() for e in events), key=lambda e: e.timestamp
        )
        self.store.log.extend(new_events)
        self.store.metadata.extend(context.metadata() for _ in new_events)
        self.store.commits += 1
        position = len(self.store.log)
        if answer is not None:
            key = (answer.claim.scope, answer.claim.key)
            self.store.answers[key] = StoredAnswer(
                answer.claim.fingerprint, answer.answer, position
            )
        return position
