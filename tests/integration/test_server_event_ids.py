"""A log scan on PostgreSQL lets the server make each event's id (uuid-ossp), and makes it
itself where the server cannot: either way every envelope carries the id the contract
documents, uuid5(NAMESPACE_URL, "orderflow:event:<aggregate id>:<version>") (docs/
integration/kafka.md), computed here by the standard library."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
import pytest

from commands.ports import CommandContext
from infra.bootstrap import WriteSide, write_side
from infra.eventstore import server_event_ids
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.settings import Settings
from schemas.commands import OrderLineRequest, PlaceOrder, ReceiveStock, RegisterItem
from schemas.envelope import Envelope

pytestmark = pytest.mark.postgres


def documented_id(envelope: Envelope) -> UUID:
    return uuid5(NAMESPACE_URL, f"orderflow:event:{envelope.aggregate_id}:{envelope.version}")


@pytest.fixture
def shop(postgres_settings: Settings) -> Iterator[WriteSide]:
    side = write_side(postgres_settings)
    context = CommandContext(correlation_id="ids", actor="tester")
    for n in range(6):
        sku = f"ID-{n}"
        side.bus.handle(RegisterItem(sku=sku, name=sku, unit_price_cents=3, on_hand=50), context)
        side.bus.handle(ReceiveStock(sku=sku, quantity=4), context)
        lines = (OrderLineRequest(sku=sku, quantity=1 + n % 3),)
        side.bus.handle(PlaceOrder(customer_id=f"c{n}", lines=lines), context)
    yield side
    side.close()


def recorder(side: WriteSide) -> PostgresRecorder:
    on_postgres = side.app.orderflow_recorder
    assert isinstance(on_postgres, PostgresRecorder)
    return on_postgres


def scanned(log: EventLog) -> list[Envelope]:
    return [e for batch in log.scan(0, batch=5) for e in batch]


def share_scanned(log: EventLog) -> list[Envelope]:
    """Both shares of a split rebuild's pass, the second on a connection of its own (as
    in the forked helper), in log order."""
    plan = log.shares(log.head())
    shares = [e for share in (0, 1) for b in log.share_scan(share, plan, 5, share == 1) for e in b]
    return sorted(shares, key=lambda e: e.position)


def test_the_server_makes_the_documented_event_ids(
    shop: WriteSide, postgres_settings: Settings
) -> None:
    assert recorder(shop).event_id_function() is not None
    log = EventLog(shop.app)
    envelopes = scanned(log)
    with psycopg.connect(postgres_settings.database_url or "") as conn:
        table = recorder(shop).events_table_name
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert stored is not None
    assert len(envelopes) == stored[0] > 6 * 3
    assert [e.event_id for e in envelopes] == [documented_id(e) for e in envelopes]
    assert share_scanned(log) == envelopes


def test_without_uuid_ossp_the_scan_makes_the_same_ids_itself(
    shop: WriteSide, postgres_settings: Settings
) -> None:
    log = EventLog(shop.app)
    by_server = scanned(log)
    with psycopg.connect(postgres_settings.database_url or "", autocommit=True) as conn:
        conn.execute('DROP EXTENSION "uuid-ossp"')
    assert recorder(shop).event_id_function() is None
    by_python = scanned(log)
    assert by_python == by_server
    assert [e.event_id for e in by_python] == [documented_id(e) for e in by_python]
    assert share_scanned(log) == by_server


def test_a_database_without_the_extension_still_opens(
    postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server_event_ids, "EVENT_ID_EXTENSION", "no-such-extension")
    with psycopg.connect(postgres_settings.database_url or "", autocommit=True) as conn:
        conn.execute('DROP EXTENSION IF EXISTS "uuid-ossp"')
    with caplog.at_level(logging.INFO, logger=server_event_ids.__name__):
        app = open_event_store(postgres_settings)
    try:
        assert "no no-such-extension" in caplog.text
        assert EventLog(app).head() == 0
    finally:
        app.close()
