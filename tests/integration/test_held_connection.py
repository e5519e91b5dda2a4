"""The group appender keeps one connection across its appends, and gets over losing it:
the append on a dead connection is retried on a new one, and nothing is appended twice."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide, write_side
from infra.eventstore.event_store import open_event_store
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.settings import Settings
from schemas.commands import OrderLineRequest, PlaceOrder, RegisterItem

pytestmark = pytest.mark.postgres
CONTEXT = CommandContext(correlation_id="held", actor="test")
APPEND = "%orderflow_append%"


@pytest.fixture
def side(postgres_settings: Settings) -> Iterator[WriteSide]:
    side = write_side(postgres_settings)
    assert side.appender is not None  # group commit is on by default
    yield side
    side.close()


def place(side: WriteSide, sku: str, quantity: int) -> None:
    side.bus.handle(
        PlaceOrder(customer_id="c", lines=(OrderLineRequest(sku=sku, quantity=quantity),)),
        CONTEXT,
    )


def appending_backends(url: str) -> set[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()"
            " AND datname = current_database()",
            (APPEND,),
        ).fetchall()
    return {row[0] for row in rows}


def test_batch_after_batch_appends_on_one_backend(side: WriteSide, postgres_url: str) -> None:
    side.bus.handle(RegisterItem(sku="H-1", name="h", unit_price_cents=5, on_hand=100), CONTEXT)
    for _ in range(12):
        place(side, "H-1", 1)
    (held,) = appending_backends(postgres_url)
    # held, not lent: the pool hands another caller one of its other connections
    recorder = side.app.orderflow_recorder
    assert isinstance(recorder, PostgresRecorder)
    with recorder.datastore.get_connection() as other:
        row = other.execute("SELECT pg_backend_pid() AS pid").fetchone()
    assert row is not None
    assert row["pid"] != held


def test_an_append_whose_held_connection_was_killed_goes_through_once(
    side: WriteSide, postgres_url: str, postgres_settings: Settings
) -> None:
    side.bus.handle(RegisterItem(sku="H-2", name="h", unit_price_cents=5, on_hand=100), CONTEXT)
    place(side, "H-2", 3)
    (held,) = appending_backends(postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (held,))

    place(side, "H-2", 4)  # its first try meets the dead connection

    (now,) = appending_backends(postgres_url)
    assert now != held
    reader = open_event_store(postgres_settings)  # nothing cached: the stored events
    try:
        fresh: InventoryItem = reader.repository.get(InventoryItem.create_id("H-2"))
    finally:
        reader.close()
    # by hand: 100 on hand, 3 and 4 reserved once each
    assert sum(fresh.reservations.values()) == 7
    assert fresh.available == 93
