"""Forgetting a customer (ADR 0023), on embedded SQLite and on real PostgreSQL: their
shipping address is stored only sealed (events, snapshots, idempotent answers, exports),
readable while the key exists, redacted everywhere once it is destroyed, and the audit
chain still verifies. The oracle is the address the test sent and the aggregate loaded
from the event store through the domain classes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.order import Order
from infra.audit.export import ExportWriter, read_export
from infra.audit.queries import Audit
from infra.bootstrap import WriteSide
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.settings import Settings
from schemas.auth import Role
from tests.privacy.stored import holds, stored_bytes

Auth = Callable[..., dict[str, str]]
ADDRESS = {
    "recipient": "Grace Hopper",
    "line1": "1 Cobol Crescent",
    "line2": "Flat Nanosecond",
    "postal_code": "NY 10011",
    "city": "Arlington",
    "country": "US",
}
CLEAR = [v for v in ADDRESS.values() if v is not None and len(v) > 2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Both stores, with the snapshot store open (snapshots taken only when asked)."""
    fixture = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    chosen: Settings = request.getfixturevalue(fixture)
    return chosen.model_copy(update={"snapshot_interval_order": 10_000})


def place(client: TestClient, auth: Auth, customer: str, key: str) -> Any:
    headers = auth(Role.CUSTOMER, customer, **{"Idempotency-Key": key})
    body = {"lines": [{"sku": "KB-1", "quantity": 1}], "shipping_address": ADDRESS}
    return client.post("/orders", json=body, headers=headers)


def load(side: WriteSide, order_id: str) -> Order:
    order: object = side.app.repository.get(UUID(order_id))
    assert isinstance(order, Order)
    return order


def exported(app: OrderFlowApplication) -> str:
    """A whole export, as `orderflow audit export` writes it (events, then the head)."""
    out = io.StringIO()
    writer = ExportWriter(out, "jsonl")
    for event in Audit(app).exported():
        writer.write(event)
    writer.finish()
    return out.getvalue()


def event_data(export: str) -> list[Any]:
    return [json.loads(x)["data"] for x in export.splitlines() if '"head"' not in x[:10]]


def test_a_forgotten_customer_s_address_is_redacted_everywhere_and_the_chain_verifies(
    write_client: TestClient, read_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    registered = write_client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 1000, "on_hand": 9},
        headers=auth(Role.OPERATOR),
    )
    assert registered.status_code == 201, registered.text
    placed = place(write_client, auth, "grace", "order-1")
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    other = place(write_client, auth, "alan", "order-2")  # another customer: kept
    assert other.status_code == 201, other.text
    assert side.app.snapshot(UUID(order_id))

    # while the key exists: clear to the domain and to auditors, sealed at rest
    assert load(side, order_id).shipping_address == ADDRESS
    auditor = auth(Role.AUDITOR)
    history = read_client.get(f"/audit/orders/{order_id}/history", headers=auditor).json()
    assert history["items"][0]["data"]["shipping_address"] == ADDRESS
    at_rest, export_before = stored_bytes(side.settings), exported(side.app)
    for clear in CLEAR:
        assert not holds(at_rest, clear), clear
        assert clear not in export_before, clear
    sealed_line = json.loads(export_before.splitlines()[2])  # item: 2 events, then the order
    assert sealed_line["sealed"] == ["shipping_address"]
    assert sealed_line["data"]["shipping_address"]["sealed"] == "A256GCM"

    # a customer may not forget anyone; nothing changes
    refused = write_client.delete(
        "/customers/grace/personal-data", headers=auth(Role.CUSTOMER, "grace")
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert load(side, order_id).shipping_address == ADDRESS

    key = side.app.personal_keys.current("grace").key
    forgotten = write_client.delete("/customers/grace/personal-data", headers=auth(sub="dpo"))
    assert forgotten.status_code == 200, forgotten.text
    assert forgotten.json()["keys_destroyed"] == 1
    assert forgotten.json()["actor"] == "dpo"
    again = write_client.delete("/customers/grace/personal-data", headers=auth(sub="dpo"))
    assert again.json()["keys_destroyed"] == 0
    records = side.app.personal_keys.forgotten("grace")
    assert [actor for _, _, actor in records] == ["dpo"]

    # afterwards: the domain (from its snapshot and from its events) sees no address
    assert load(side, order_id).shipping_address is None
    snapshots = side.app.snapshots
    assert snapshots is not None
    assert [s.originator_version for s in snapshots.get(UUID(order_id))] == [2]
    from_events = Audit(side.app).state(Order, UUID(order_id), version=2)
    assert from_events.shipping_address is None
    assert load(side, other.json()["order_id"]).shipping_address == ADDRESS

    history = read_client.get(f"/audit/orders/{order_id}/history", headers=auditor).json()
    created = history["items"][0]
    assert created["data"]["shipping_address"] is None
    assert created["redacted"] == ["shipping_address"]
    state = read_client.get(f"/audit/orders/{order_id}/state", headers=auditor).json()
    assert (state["shipping_address"], state["redacted"]) == (None, ["shipping_address"])
    verified = read_client.get("/audit/verify", headers=auditor).json()
    assert verified["ok"] is True
    assert verified["checked"] == side.app.recorder.max_notification_id()

    # the stored bytes did not change (the chain covers them) and nothing holds clear text
    assert exported(side.app) == export_before
    after = stored_bytes(side.settings)
    for clear in CLEAR:
        assert not holds(after, clear), clear
    assert key not in after  # nor its key: SQLite's files (and WAL) no longer hold it
    assert key.hex().encode() not in after

    # the stored idempotent answer replays without the address
    replay = place(write_client, auth, "grace", "order-1")
    assert replay.status_code == 201
    assert replay.json()["order_id"] == order_id
    assert not any(clear in replay.text for clear in CLEAR)


def test_a_customer_forgotten_who_orders_again_gets_a_new_key(
    write_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    write_client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 1000, "on_hand": 9},
        headers=auth(Role.OPERATOR),
    )
    first = place(write_client, auth, "grace", "a").json()["order_id"]
    assert write_client.delete("/customers/grace/personal-data", headers=auth()).status_code == 200
    second = place(write_client, auth, "grace", "b").json()["order_id"]
    assert load(side, first).shipping_address is None
    assert load(side, second).shipping_address == ADDRESS


def test_forgetting_needs_a_valid_customer_id_and_a_token(
    write_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    assert write_client.delete("/customers/grace/personal-data").status_code == 401
    bad = write_client.delete("/customers/%20/personal-data", headers=auth())
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert side.app.personal_keys.forgotten(" ") == []


def test_an_export_reimports_sealed_and_a_store_without_the_keys_reads_it_redacted(
    write_client: TestClient, auth: Auth, side: WriteSide, tmp_path: Path
) -> None:
    write_client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 1000, "on_hand": 9},
        headers=auth(Role.OPERATOR),
    )
    order_id = place(write_client, auth, "grace", "a").json()["order_id"]
    original = exported(side.app)
    elsewhere = open_event_store(Settings(data_dir=tmp_path / "elsewhere"))
    imported = Audit(elsewhere)
    lines = original.splitlines()
    assert len(lines) == 6  # item registered, stock received; order created, reserved x2; head
    assert imported.import_export(lambda: read_export(lines)) == 5
    assert event_data(exported(elsewhere)) == event_data(original)
    created = imported.history(UUID(order_id))[0]
    assert (created.data["shipping_address"], created.redacted) == (None, ["shipping_address"])
    assert load(side, order_id).shipping_address == ADDRESS  # the source still reads it
