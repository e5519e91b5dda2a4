"""Snapshots change nothing but speed. Random command sequences run on a store that
snapshots orders and inventory items at random intervals (and now and then on an operator's
demand); after every step, every new version of every aggregate loads the same with
snapshots as replayed from the first event, and so does "state as of" its time."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEvent
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from commands.bus import CommandBus
from domain.inventory import InventoryItem
from domain.order import Order, OrderStatus
from infra.audit.queries import Audit
from infra.bootstrap import WriteSide, write_side
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.snapshots import Snapshots
from infra.settings import Settings
from tests.aggregate_state import public_state
from tests.property.test_command_sequences import SKUS, CommandSequences, Store


class SnapshottingStore:
    """A SQLite store whose write side snapshots every N events per aggregate type, and a
    second application on the same file that never reads a snapshot: the reference."""

    bus: CommandBus
    side: WriteSide
    plain: OrderFlowApplication

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory()

    def open(self, order_every: int, item_every: int) -> None:
        chosen = Settings(
            data_dir=Path(self.dir.name),
            jwt_secret="s" * 32,
            snapshot_interval_order=order_every,
            snapshot_interval_inventory=item_every,
            aggregate_cache_size=0,  # every load from the latest snapshot, not from memory
        )
        self.side = write_side(chosen)
        self.bus = self.side.bus
        self.plain = open_event_store(
            Settings(
                data_dir=Path(self.dir.name), jwt_secret="s" * 32, snapshot_interval_inventory=0
            )
        )
        assert self.side.app.snapshots is not None
        assert self.plain.snapshots is None

    def log_size(self) -> int:
        return self.side.app.recorder.max_notification_id() or 0

    def item(self, sku: str) -> InventoryItem | None:
        if not list(self.plain.events.get(InventoryItem.create_id(sku), limit=1)):
            return None
        found: object = self.side.app.repository.get(InventoryItem.create_id(sku))
        assert isinstance(found, InventoryItem)
        return found

    def order(self, order_id: UUID) -> Order:
        found: object = self.side.app.repository.get(order_id)
        assert isinstance(found, Order)
        return found

    def close(self) -> None:
        self.side.close()
        self.plain.close()
        self.dir.cleanup()


class SnapshotSequences(CommandSequences):
    def make_store(self) -> Store:
        self.snapshotting = SnapshottingStore()
        return self.snapshotting

    @initialize(order_every=st.integers(1, 4), item_every=st.integers(1, 7))
    def open_store(self, order_every: int, item_every: int) -> None:
        self.snapshotting.open(order_every, item_every)
        self.every = {"order": order_every, "inventory": item_every}
        self.checked: dict[UUID, int] = defaultdict(int)  # versions compared so far
        self.on_demand: dict[UUID, set[int]] = defaultdict(set)

    def aggregates(self) -> list[tuple[str, UUID]]:
        items = [("inventory", InventoryItem.create_id(s)) for s in SKUS if self.store.item(s)]
        return [*items, *(("order", o) for o in self.placed)]

    @rule(pick=st.integers(0, 100))
    def operator_takes_a_snapshot(self, pick: int) -> None:
        known = self.aggregates()
        if not known:
            return
        _, aggregate_id = known[pick % len(known)]
        taken = Snapshots(self.snapshotting.side.app).take(aggregate_id)
        if taken is not None:
            self.on_demand[aggregate_id].add(taken)
            # loads at that version now start from this snapshot: compare it again
            self.checked[aggregate_id] = min(self.checked[aggregate_id], taken - 1)

    @invariant()
    def snapshots_change_no_state(self) -> None:
        snapshotting, plain = self.snapshotting.side.app, self.snapshotting.plain
        for kind, aggregate_id in self.aggregates():
            events = list(plain.events.get(aggregate_id, gt=self.checked[aggregate_id]))
            for event in events:
                assert isinstance(event, DomainEvent)
                version = event.originator_version
                expected: Aggregate = plain.repository.get(aggregate_id, version=version)
                loaded: Aggregate = snapshotting.repository.get(aggregate_id, version=version)
                assert_same(loaded, expected)
                moment = event.timestamp
                assert_same(
                    state_as_of(Audit(snapshotting), kind, aggregate_id, moment),
                    state_as_of(Audit(plain), kind, aggregate_id, moment),
                )
                self.checked[aggregate_id] = version

    @invariant()
    def the_library_snapshots_at_every_interval(self) -> None:
        snapshots = self.snapshotting.side.app.snapshots
        assert snapshots is not None
        for kind, aggregate_id in self.aggregates():
            last = list(self.snapshotting.plain.events.get(aggregate_id, desc=True, limit=1))
            head = last[0].originator_version
            taken = {s.originator_version for s in snapshots.get(aggregate_id)}
            every = self.every[kind]
            assert taken - self.on_demand[aggregate_id] == set(range(every, head + 1, every))

    def teardown(self) -> None:
        self.snapshotting.close()


def state_as_of(audit: Audit, kind: str, aggregate_id: UUID, moment: datetime) -> Aggregate:
    if kind == "order":
        return audit.state(Order, aggregate_id, as_of=moment)
    return audit.state(InventoryItem, aggregate_id, as_of=moment)


def assert_same(loaded: Aggregate, expected: Aggregate) -> None:
    assert type(loaded) is type(expected)
    assert public_state(loaded) == public_state(expected)
    if isinstance(loaded, Order):
        assert isinstance(loaded.status, OrderStatus)


TestSnapshotSequences = SnapshotSequences.TestCase
TestSnapshotSequences.settings = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
