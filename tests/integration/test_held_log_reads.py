"""The log follower reads what other processes appended on the group appender's held
connection (infra/eventstore/held_connection.py), not on a connection from the pool, and
reads exactly what the library's own query of the notification log gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide, write_side
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.log_follower import CURRENT_FOR_S
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.settings import Settings
from schemas.commands import RegisterItem
from tests.integration.test_held_connection import appending_backends, place

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="held-read", actor="test")


@pytest.fixture
def side(postgres_settings: Settings) -> Iterator[WriteSide]:
    with closing(write_side(postgres_settings)) as writes:
        assert writes.appender is not None  # group commit is on by default
        yield writes


@pytest.fixture
def theirs(postgres_settings: Settings) -> Iterator[OrderFlowApplication]:
    """Another write process's event store on the same database."""
    app = open_event_store(postgres_settings)
    yield app
    app.close()


def receive(app: OrderFlowApplication, sku: str, quantity: int) -> None:
    item: InventoryItem = app.repository.get(InventoryItem.create_id(sku))
    item.receive(quantity)
    app.save(item)


def stored(settings: Settings, sku: str) -> InventoryItem:
    reader = open_event_store(settings)  # nothing cached: the stored events
    try:
        found: InventoryItem = reader.repository.get(InventoryItem.create_id(sku))
    finally:
        reader.close()
    return found


def pool_requests(side: WriteSide) -> int:
    recorder = side.app.orderflow_recorder
    assert isinstance(recorder, PostgresRecorder)
    return int(recorder.datastore.pool.get_stats().get("requests_num", 0))


def test_the_read_gives_what_the_librarys_query_gives(
    side: WriteSide, theirs: OrderFlowApplication
) -> None:
    for n in range(6):
        side.bus.handle(
            RegisterItem(sku=f"R-{n}", name="r", unit_price_cents=5, on_hand=10), CONTEXT
        )
        receive(theirs, f"R-{n}", 2)
    library = theirs.recorder.select_notifications(start=1, limit=100)
    assert len(library) == 18  # per SKU: registered, its stock, the stock received
    for after, limit in ((0, 100), (0, 5), (library[3].id, 4), (library[-1].id, 10)):
        expected = theirs.recorder.select_notifications(after, limit, inclusive_of_start=False)
        got = side.app.notifications_after(after, limit)
        assert [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in got] == [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in expected
        ]


def test_what_another_process_appended_is_read_without_a_connection_from_the_pool(
    side: WriteSide, theirs: OrderFlowApplication, postgres_settings: Settings
) -> None:
    side.bus.handle(RegisterItem(sku="F-1", name="f", unit_price_cents=5, on_hand=10), CONTEXT)
    place(side, "F-1", 1)
    receive(theirs, "F-1", 5)  # the cached item is stale now
    time.sleep(CURRENT_FOR_S + 0.1)  # so the next batch reads the log before it decides
    requests = pool_requests(side)

    place(side, "F-1", 2)

    assert pool_requests(side) == requests  # the read, like the append, on the held one
    fresh = stored(postgres_settings, "F-1")
    # by hand: 10 on hand and 5 received, 1 and 2 reserved
    assert (fresh.on_hand, sum(fresh.reservations.values()), fresh.available) == (15, 3, 12)


def test_a_read_that_meets_a_killed_held_connection_is_made_again_on_a_new_one(
    side: WriteSide, theirs: OrderFlowApplication, postgres_settings: Settings, postgres_url: str
) -> None:
    side.bus.handle(RegisterItem(sku="K-1", name="k", unit_price_cents=5, on_hand=10), CONTEXT)
    place(side, "K-1", 1)
    (held,) = appending_backends(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (held,))
    receive(theirs, "K-1", 4)
    others = appending_backends(postgres_url)  # the other process's
    time.sleep(CURRENT_FOR_S + 0.1)  # so the next batch reads the log before it decides

    place(side, "K-1", 2)  # its read meets the dead connection first

    (now,) = appending_backends(postgres_url) - others
    assert now != held
    fresh = stored(postgres_settings, "K-1")
    # by hand: 10 on hand and 4 received, 1 and 2 reserved, each once
    assert (fresh.on_hand, sum(fresh.reservations.values()), fresh.available) == (14, 3, 11)
