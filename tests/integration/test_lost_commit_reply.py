"""An append whose commit reply is lost: the recorder retries it, finds its own events
already stored, and the command is answered as committed, not run a second time.

On PostgreSQL an append is one statement in autocommit (the recorder's append function):
its reply is lost once the server says it is idle again, its transaction committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
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


def test_a_collision_on_the_first_attempt_is_a_conflict_without_a_look_for_its_own_events(
    direct_side: WriteSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no retry, nothing of an append was stored before it collided: the events at
    its versions are another writer's, even the same bytes (a command decided twice)."""
    recorder = direct_side.app.orderflow_recorder
    looks = count_looks(recorder, monkeypatch)
    aggregate = uuid4()
    ours = [StoredEvent(aggregate, v, "test:Ours", f"ours {v}".encode()) for v in (1, 2)]
    positions = recorder.insert_events(ours)
    assert positions is not None
    assert len(positions) == 2

    with pytest.raises(IntegrityError):
        recorder.insert_events(ours)
    theirs = [StoredEvent(aggregate, 2, "test:Ours", b"another writer's")]
    with pytest.raises(IntegrityError):
        recorder.insert_events(theirs)
    assert looks == []
    stored = recorder.select_events(aggregate)
    assert [(e.originator_version, e.state) for e in stored] == [(1, b"ours 1"), (2, b"ours 2")]


def test_a_retry_after_a_lost_reply_looks_once_and_finds_its_own_events(
    proxied_side: WriteSide,
    direct_side: WriteSide,
    cutter: CommitCutter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = proxied_side.app.orderflow_recorder
    looks = count_looks(recorder, monkeypatch)
    aggregate = uuid4()
    ours = [StoredEvent(aggregate, v, "test:Ours", f"ours {v}".encode()) for v in (1, 2)]
    cutter.arm()
    positions = recorder.insert_events(ours)

    assert cutter.cuts == 1
    assert looks == [[1, 2]]
    stored = direct_side.app.recorder.select_notifications(start=1, limit=1000)
    assert positions == [n.id for n in stored if n.originator_id == aggregate]


def count_looks(recorder: Any, monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The versions of every look for already recorded events (the real look is made)."""
    looks: list[list[int]] = []
    real = recorder._already_recorded

    def looking(stored_events: Any) -> Any:
        looks.append([e.originator_version for e in stored_events])
        return real(stored_events)

    monkeypatch.setattr(recorder, "_already_recorded", looking)
    return looks
