"""An append whose commit reply is lost: the recorder retries it, finds its own events
already stored, and the command is answered as committed, not run a second time.

On PostgreSQL an append is one statement in autocommit (the recorder's append function):
its reply is lost once the server says it is idle again, its transaction committed."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from fastapi.testclient import TestClient

from domain.inventory import InventoryItem
from infra.bootstrap import WriteSide, write_side
from infra.eventstore.postgres_recorder import APPEND_FUNCTION
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role
from tests.harness.commit_cutter import READY_IDLE, CommitCutter
from tests.harness.postgres import PostgresServer
from write_api.app import create_app

pytestmark = pytest.mark.postgres


@pytest.fixture
def cutter(postgres_server: PostgresServer) -> Iterator[CommitCutter]:
    proxy = CommitCutter(postgres_server.port, sent=APPEND_FUNCTION.encode(), answered=READY_IDLE)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def proxied_side(postgres_settings: Settings, cutter: CommitCutter) -> Iterator[WriteSide]:
    """The write side reaching the database through the proxy."""
    assert postgres_settings.database_url is not None
    url = urlsplit(postgres_settings.database_url)
    through = url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{cutter.port}")
    side = write_side(postgres_settings.model_copy(update={"database_url": through.geturl()}))
    yield side
    side.close()


@pytest.fixture
def direct_side(postgres_settings: Settings) -> Iterator[WriteSide]:
    """The oracle's view: the same database, reached directly."""
    side = write_side(postgres_settings)
    yield side
    side.close()


def test_a_receipt_whose_commit_reply_is_lost_adds_the_stock_once(
    proxied_side: WriteSide, direct_side: WriteSide, cutter: CommitCutter
) -> None:
    token = mint_token(proxied_side.settings.token_secret, "ops", Role.OPERATOR, 600)
    headers = {"Authorization": f"Bearer {token}"}  # no Idempotency-Key
    with TestClient(create_app(proxied_side)) as client:
        registered = client.post(
            "/inventory",
            json={"sku": "LOST-1", "name": "lost", "unit_price_cents": 100, "on_hand": 4},
            headers=headers,
        )
        assert registered.status_code == 201
        cutter.arm()
        received = client.post("/inventory/LOST-1/receipts", json={"quantity": 7}, headers=headers)

    assert cutter.cuts == 1  # the reply to the receipt's append was lost
    assert received.status_code == 200, received.text
    assert received.json()["on_hand"] == 4 + 7

    item_id = InventoryItem.create_id("LOST-1")
    item: object = direct_side.app.repository.get(item_id)
    assert isinstance(item, InventoryItem)
    assert (item.on_hand, item.reserved) == (4 + 7, 0)
    receipts = [
        n
        for n in direct_side.app.recorder.select_notifications(start=1, limit=1000)
        if n.originator_id == item_id and n.topic.endswith("stock_received")
    ]
    assert len(receipts) == 2  # the registration's 4 and the receipt's 7, nothing more
    assert received.json()["position"] == receipts[-1].id


def test_a_collision_with_other_events_stays_a_conflict_and_the_same_events_are_found(
    direct_side: WriteSide,
) -> None:
    """What the retry after a lost reply meets, on the recorder: its own events (found,
    with their positions) or another writer's at the same versions (a conflict)."""
    recorder = direct_side.app.orderflow_recorder
    aggregate = uuid4()
    ours = [StoredEvent(aggregate, v, "test:Ours", f"ours {v}".encode()) for v in (1, 2)]
    positions = recorder.insert_events(ours)
    assert positions is not None
    assert len(positions) == 2

    assert recorder.insert_events(ours) == positions  # as the library's retry would call it

    theirs = [StoredEvent(aggregate, 2, "test:Ours", b"another writer's")]
    with pytest.raises(IntegrityError):
        recorder.insert_events(theirs)
    stored = recorder.select_events(aggregate)
    assert [(e.originator_version, e.state) for e in stored] == [(1, b"ours 1"), (2, b"ours 2")]
