"""POST /orders/{id}/payments records a manual or offline payment: staff only (issue 14).

Oracle: the order and its events as the event store holds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.order import Order
from infra.bootstrap import WriteSide
from schemas.auth import Role
from tests.api.test_write_api import appended, is_problem

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def order(write_client: TestClient, auth: Auth) -> dict[str, Any]:
    write_client.post(
        "/inventory",
        json={"sku": "KB", "name": "k", "unit_price_cents": 1250, "on_hand": 5},
        headers=auth(Role.OPERATOR),
    )
    placed: dict[str, Any] = write_client.post(
        "/orders",
        json={"lines": [{"sku": "KB", "quantity": 2}]},
        headers=auth(Role.CUSTOMER, "alice"),
    ).json()
    return placed


def stored(side: WriteSide, order_id: str) -> Order:
    found: object = side.app.repository.get(UUID(order_id))
    assert isinstance(found, Order)
    return found


def actors(side: WriteSide, order_id: str) -> list[str]:
    decode = side.app.mapper.transcoder.decode
    return [
        decode(e.state)["_meta"]["actor"] for e in side.app.recorder.select_events(UUID(order_id))
    ]


def test_a_customer_cannot_mark_even_their_own_order_paid(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any]
) -> None:
    before = appended(side)
    response = write_client.post(
        f"/orders/{order['order_id']}/payments",
        json={"amount_cents": 2500, "payment_ref": "anything"},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    is_problem(response, 403, "forbidden")
    assert appended(side) == before
    assert stored(side, order["order_id"]).status == "reserved"


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_staff_record_a_payment_and_are_its_actor(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any], role: Role
) -> None:
    response = write_client.post(
        f"/orders/{order['order_id']}/payments",
        json={"amount_cents": 2500, "payment_ref": "bank-transfer-77"},
        headers=auth(role, "clerk-bob"),
    )
    assert response.status_code == 200, response.text
    paid = stored(side, order["order_id"])
    assert (paid.status, paid.payment_ref, paid.version) == ("paid", "bank-transfer-77", 3)
    assert actors(side, order["order_id"])[-1] == "clerk-bob"


def test_a_payment_without_a_reference_is_422_and_appends_nothing(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any]
) -> None:
    before = appended(side)
    response = write_client.post(
        f"/orders/{order['order_id']}/payments",
        json={"amount_cents": 2500},
        headers=auth(Role.OPERATOR),
    )
    is_problem(response, 422, "validation-error")
    assert appended(side) == before


def test_the_openapi_description_says_who_may_record_payments(write_client: TestClient) -> None:
    operation = write_client.get("/openapi.json").json()["paths"]["/orders/{order_id}/payments"]
    post = operation["post"]
    assert "403" in post["responses"]
    assert "customer" in post["description"].lower()
