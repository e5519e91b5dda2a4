"""`order.created` version 2: an order may carry a shipping address, end to end: request,
event (schema_version 2 on the envelope, the address sealed as personal data), audit
state. Without one it is null."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from infra.bootstrap import WriteSide
from infra.eventstore.envelopes import reveal
from infra.eventstore.event_log import EventLog
from schemas.auth import Role
from schemas.events import OrderCreated

Auth = Callable[..., dict[str, str]]
ADDRESS = {
    "recipient": "Ada Lovelace",
    "line1": "12 St James's Square",
    "line2": None,
    "postal_code": "SW1Y 4JH",
    "city": "London",
    "country": "GB",
}


def place(client: TestClient, auth: Auth, **extra: Any) -> Any:
    client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 1000, "on_hand": 5},
        headers=auth(Role.OPERATOR),
    )
    body = {"lines": [{"sku": "KB-1", "quantity": 1}], **extra}
    return client.post("/orders", json=body, headers=auth(Role.CUSTOMER, "ada"))


def test_an_order_carries_its_shipping_address_into_its_event_and_audit_state(
    write_client: TestClient, read_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    placed = place(write_client, auth, shipping_address=ADDRESS)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    created = next(
        e for batch in EventLog(side.app).iterate(0) for e in batch if e.type == "order.created"
    )
    assert created.schema_version == 2
    assert created.sealed == ["shipping_address"]
    assert created.data["shipping_address"]["sealed"] == "A256GCM"
    opened = reveal(created, side.app.personal_keys)
    assert (opened.data["shipping_address"], opened.sealed) == (ADDRESS, [])
    OrderCreated.model_validate(opened.data)
    state = read_client.get(f"/audit/orders/{order_id}/state", headers=auth(Role.AUDITOR))
    assert state.status_code == 200, state.text
    assert state.json()["shipping_address"] == ADDRESS


def test_without_an_address_the_order_has_none(
    write_client: TestClient, read_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    placed = place(write_client, auth)
    assert placed.status_code == 201, placed.text
    created = next(
        e for batch in EventLog(side.app).iterate(0) for e in batch if e.type == "order.created"
    )
    assert created.schema_version == 2
    assert created.data["shipping_address"] is None
    assert created.sealed == []
    state = read_client.get(
        f"/audit/orders/{placed.json()['order_id']}/state", headers=auth(Role.AUDITOR)
    )
    assert state.json()["shipping_address"] is None


def test_an_address_without_a_valid_country_is_refused_and_appends_nothing(
    write_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    placed = place(write_client, auth, shipping_address={**ADDRESS, "country": "United Kingdom"})
    assert placed.status_code == 422
    assert placed.headers["content-type"] == "application/problem+json"
    types = [e.type for batch in EventLog(side.app).iterate(0) for e in batch]
    assert types == ["inventory.item_registered", "inventory.stock_received"]  # no order
