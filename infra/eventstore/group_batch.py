"""The aggregates of one group-commit batch, in memory: commands are decided one after
another against them, each seeing what the commands before it in the batch decided.

The aggregates come from the library's cache without a copy (only the appender's thread
changes them), kept current from the notification log (infra/eventstore/log_follower.py); one not
cached is loaded from its latest snapshot and the events after it. A command that fails
leaves them as they were before it: each one it changed is rebuilt from the store at the
version the batch started from plus the events the batch's earlier commands decided.
After the batch commits, the cache holds them at their new versions; if it does not
commit, they are dropped from the cache."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository, project_aggregate
from eventsourcing.domain import CanMutateAggregate

from commands.ports import CommandContext, IdempotentAnswer, UnitOfWork
from domain.inventory import InventoryItem
from domain.order import Order
from infra.eventstore.aggregate_lookup import AggregateLookup

A = TypeVar("A", InventoryItem, Order)
T = TypeVar("T")
Aggregate = InventoryItem | Order
Event = CanMutateAggregate[UUID]


class Batch:
    def __init__(self, repository: Repository[UUID]) -> None:
        self._repository = repository
        self._aggregates: dict[UUID, Aggregate] = {}
        self._absent: set[UUID] = set()
        self._decided: dict[UUID, list[Event]] = {}  # per aggregate, in version order
        self._cached: set[UUID] = set()  # taken from the cache, not read from the store
        self._relied_on: set[UUID] = set()  # read by a command that appends events

    @property
    def aggregates(self) -> list[Aggregate]:
        return list(self._aggregates.values())

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id in self._aggregates:
            return self._aggregates[aggregate_id]
        if aggregate_id in self._absent:
            return None
        cache = self._repository.cache
        if cache is not None:
            with suppress(KeyError):  # kept current by the appender's LogFollower
                cached = cast(Aggregate, cache.get(aggregate_id))
                self._aggregates[aggregate_id] = cached
                self._cached.add(aggregate_id)
                return cached
        try:
            found: Aggregate = self._repository.get(aggregate_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            self._absent.add(aggregate_id)
            return None
        self._aggregates[aggregate_id] = found
        return found

    def decide(self, decide: Callable[[UnitOfWork], T]) -> tuple[T, list[Event]]:
        """Runs one command; returns what it decided and its events, in the order they
        happened. If it raises, the batch's aggregates are as they were before it."""
        uow = BatchUnitOfWork(self)
        try:
            decided = decide(uow)
        except BaseException:
            self._undo(uow.touched.values())
            raise
        events = sorted(
            (e for a in uow.touched.values() for e in a.collect_events()),
            key=lambda e: e.timestamp,
        )
        for e in events:
            self._decided.setdefault(e.originator_id, []).append(e)
        if events:
            self._relied_on.update(uow.touched)
        for aggregate in uow.touched.values():
            self._aggregates[aggregate.id] = aggregate
            self._absent.discard(aggregate.id)
        return decided, events

    def relies_on_unwritten(self) -> bool:
        """Whether a command that appends read a cached aggregate the batch appends nothing
        to: its append cannot conflict if that aggregate was stale."""
        return any(a in self._cached and a not in self._decided for a in self._relied_on)

    def _undo(self, touched: Iterable[Aggregate]) -> None:
        for aggregate in touched:
            if not aggregate.pending_events:
                continue  # aggregates change only through events: this one did not
            self._evict(aggregate.id)
            decided = self._decided.get(aggregate.id, [])
            if aggregate.id not in self._aggregates and not decided:
                continue  # new in the failed command: forgotten with it
            before_batch = aggregate.version - len(aggregate.pending_events) - len(decided)
            base: Aggregate | None = None
            if before_batch > 0:
                base = self._repository.get(aggregate.id, version=before_batch)
            self._aggregates[aggregate.id] = cast(Aggregate, project_aggregate(base, decided))

    def committed(self) -> None:
        """The batch is stored: later batches start from these aggregates."""
        cache = self._repository.cache
        if cache is not None:
            for aggregate_id, aggregate in self._aggregates.items():
                cache.put(aggregate_id, aggregate)

    def abandoned(self) -> None:
        """The batch was not stored: the cache must not keep what it decided."""
        for aggregate_id in self._aggregates:
            self._evict(aggregate_id)

    def _evict(self, aggregate_id: UUID) -> None:
        cache = self._repository.cache
        if cache is not None:
            with suppress(KeyError):
                cache.get(aggregate_id, evict=True)


class BatchUnitOfWork(AggregateLookup):
    """A UnitOfWork over the batch's aggregates; the group appender commits."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.touched: dict[UUID, Aggregate] = {}

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        found = self._batch.load(aggregate_id)
        if not isinstance(found, kind):
            return None
        self.touched[aggregate_id] = found
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.touched[aggregate.id] = aggregate

    def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
        raise TypeError("a batch's commands are committed by the group appender")
