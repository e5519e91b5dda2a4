"""The aggregates of one group-commit batch, in memory: commands are decided one after
another against them, each seeing what the commands before it in the batch decided.

The aggregates come from the library's cache without a copy (only the appender's thread
changes them), kept current from the notification log (infra/eventstore/log_follower.py); one not
cached is loaded from its latest snapshot and the events after it. A command that fails
leaves them as they were before it: each one it changed is rebuilt at the version the
batch started from (the batch's copy, when it keeps copies, else read from the store)
plus the events the batch's earlier commands decided. After the batch commits, the cache
holds them at their new versions; if it does not commit, the ones it changed are dropped
from the cache, or put back as the batch found them (the others are as they were).

When another process appended to some of the batch's aggregates first, only the commands
that relied on them are taken back (`withdraw`): the aggregates those commands changed
are rebuilt the same way with the events the batch keeps, and the rest of the batch
stands as decided. Copies are kept once conflicts are likely (group_commit.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, ProjectorFunction, Repository
from eventsourcing.domain import CanMutateAggregate

from commands.ports import CommandContext, IdempotentAnswer, UnitOfWork
from domain.inventory import InventoryItem
from domain.order import Order
from infra.eventstore.aggregate_lookup import AggregateLookup

A = TypeVar("A", InventoryItem, Order)
T = TypeVar("T")
Aggregate = InventoryItem | Order
Event = CanMutateAggregate[UUID]
C = TypeVar("C", bound=InventoryItem | Order)


@dataclass
class Decided(Generic[T]):
    """What one command decided, its events in the order they happened, and every
    aggregate id it looked up (found or not): what its decision rests on."""

    value: T
    events: list[Event]
    looked: set[UUID]


class Batch:
    def __init__(self, repository: Repository[UUID], keep_before: bool = False) -> None:
        self._repository = repository
        # with keep_before, a copy of each aggregate as the batch found it: what a command
        # taken back is undone to, instead of reading the aggregate from the store again
        self._before: dict[UUID, Aggregate] | None = {} if keep_before else None
        self._aggregates: dict[UUID, Aggregate] = {}
        self._absent: set[UUID] = set()
        self._decided: dict[UUID, list[Event]] = {}  # per aggregate, in version order
        self._cached: set[UUID] = set()  # taken from the cache, not read from the store
        self._relied_on: set[UUID] = set()  # read by a command that appends events

    @property
    def aggregates(self) -> list[Aggregate]:
        return list(self._aggregates.values())

    @property
    def aggregate_ids(self) -> set[UUID]:
        return set(self._aggregates) | self._absent

    def load(self, aggregate_id: UUID) -> Aggregate | None:
        if aggregate_id in self._aggregates:
            return self._aggregates[aggregate_id]
        if aggregate_id in self._absent:
            return None
        cache = self._repository.cache
        if cache is not None:
            with suppress(KeyError):  # kept current by the appender's LogFollower
                cached = cast(Aggregate, cache.get(aggregate_id))
                self._found(cached)
                self._cached.add(aggregate_id)
                return cached
        try:
            found: Aggregate = self._repository.get(
                aggregate_id, deepcopy_from_cache=False, projector_func=PROJECT
            )
        except AggregateNotFoundError:
            self._absent.add(aggregate_id)
            return None
        self._found(found)
        return found

    def _found(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate
        if self._before is not None:
            self._before[aggregate.id] = copied(aggregate)

    def decide(self, decide: Callable[[UnitOfWork], T]) -> Decided[T]:
        """Runs one command. If it raises, the batch's aggregates are as they were before it."""
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
        return Decided(decided, events, uow.looked)

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
            base = self._base(aggregate.id, before_batch)
            self._aggregates[aggregate.id] = cast(Aggregate, project(base, decided))

    def committed(self) -> None:
        """The batch is stored: later batches start from these aggregates."""
        cache = self._repository.cache
        if cache is not None:
            for aggregate_id, aggregate in self._aggregates.items():
                cache.put(aggregate_id, aggregate)

    def withdraw(self, events: Iterable[Event], changed: Collection[UUID]) -> None:
        """Takes back these events (all those of some of the batch's commands), after
        another process appended to the `changed` aggregates; none of the events the batch
        keeps may be on one of those. An aggregate left with none of the batch's events
        goes back to the cache as the batch found it (if a copy was kept), where the log
        follower brings it up to date; one that keeps some is rebuilt from that copy, or
        from the store, plus the events it keeps. One the batch only read is left to the
        cache too."""
        withdrawn = list(events)
        out = {id(e) for e in withdrawn}
        for aggregate_id in {e.originator_id for e in withdrawn}:
            decided = self._decided.pop(aggregate_id)
            kept = [e for e in decided if id(e) not in out]
            assert not kept or aggregate_id not in changed, "kept an event on a stale aggregate"
            aggregate = self._aggregates.pop(aggregate_id)
            self._evict(aggregate_id)
            self._cached.discard(aggregate_id)
            if not kept:  # the next load takes it from the cache or the store, as it is now
                before = self._before.pop(aggregate_id, None) if self._before is not None else None
                if before is not None and self._repository.cache is not None:
                    self._repository.cache.put(aggregate_id, before)
                continue
            base = self._base(aggregate_id, aggregate.version - len(decided))
            self._aggregates[aggregate_id] = cast(Aggregate, project(base, kept))
            self._decided[aggregate_id] = kept
        for aggregate_id in changed:
            if aggregate_id not in self._decided:
                self._aggregates.pop(aggregate_id, None)
                self._cached.discard(aggregate_id)
                if self._before is not None:
                    self._before.pop(aggregate_id, None)
            self._absent.discard(aggregate_id)

    def _base(self, aggregate_id: UUID, version: int) -> Aggregate | None:
        """The aggregate at `version`, which the batch found it at: from the batch's copy,
        if it kept one, else from the store."""
        if version == 0:
            return None
        before = self._before.get(aggregate_id) if self._before is not None else None
        if before is not None and before.version == version:
            return copied(before)
        return cast(
            Aggregate, self._repository.get(aggregate_id, version=version, projector_func=PROJECT)
        )

    def abandoned(self) -> None:
        """The batch was not stored: the cache must not keep what it decided. An aggregate
        no command changed is as it was, and stays; one that was changed goes back as the
        batch found it, if it kept a copy."""
        cache = self._repository.cache
        for aggregate_id in self._decided:
            self._evict(aggregate_id)
            before = self._before.get(aggregate_id) if self._before is not None else None
            if before is not None and cache is not None:
                cache.put(aggregate_id, before)

    def _evict(self, aggregate_id: UUID) -> None:
        cache = self._repository.cache
        if cache is not None:
            with suppress(KeyError):
                cache.get(aggregate_id, evict=True)


def project(aggregate: C | None, events: Iterable[Event]) -> C | None:
    """The library's project_aggregate without its runtime protocol check per event."""
    for event in events:
        aggregate = cast(C, event.mutate(aggregate))
    return aggregate


PROJECT: ProjectorFunction[Any, Any] = project  # typed as the library's get wants it


def copied(aggregate: C) -> C:
    """A copy of the aggregate whose containers (dicts, lists, sets) are copied one level
    deep. Enough because the domain's aggregates change only their attributes and the
    containers those hold, never an object nested inside a container
    (tests/unit/test_aggregate_copies.py); a deep copy would cost a hot SKU's every
    reservation each time."""
    copy = object.__new__(type(aggregate))
    state = vars(copy)
    for name, value in vars(aggregate).items():
        state[name] = value.copy() if type(value) in _CONTAINERS else value
    return copy


_CONTAINERS = (dict, list, set)


class BatchUnitOfWork(AggregateLookup):
    """A UnitOfWork over the batch's aggregates; the group appender commits."""

    def __init__(self, batch: Batch) -> None:
        self._batch = batch
        self.touched: dict[UUID, Aggregate] = {}
        self.looked: set[UUID] = set()

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        self.looked.add(aggregate_id)
        found = self._batch.load(aggregate_id)
        if not isinstance(found, kind):
            return None
        self.touched[aggregate_id] = found
        return found

    def add(self, aggregate: Aggregate) -> None:
        self.looked.add(aggregate.id)
        self.touched[aggregate.id] = aggregate

    def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
        raise TypeError("a batch's commands are committed by the group appender")
