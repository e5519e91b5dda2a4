"""Signed payment webhooks (seed 000's payment gateway integration), on both backends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from domain.order import Order
from infra.bootstrap import WriteSide
from infra.http.webhook_signature import sign
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


def event(
    kind: str,
    order_id: str,
    amount: int = 2500,
    currency: str = "eur",
    event_id: str = "evt_1",
    **extra: Any,
) -> bytes:
    payment = {
        "id": "pi_1",
        "amount": amount,
        "currency": currency,
        "metadata": {"order_id": order_id},
        **extra,
    }
    return json.dumps({"id": event_id, "type": kind, "data": {"object": payment}}).encode()


def deliver(
    client: TestClient,
    side: WriteSide,
    body: bytes,
    secret: str | None = None,
    at: int | None = None,
) -> Response:
    signature = sign(secret or side.settings.webhook_secret, at or int(time.time()), body)
    return client.post(
        "/webhooks/payments",
        content=body,
        headers={"Payment-Signature": signature, "Content-Type": "application/json"},
    )


def state(side: WriteSide, order_id: str) -> Order:
    found: object = side.app.repository.get(UUID(order_id))
    assert isinstance(found, Order)
    return found


def test_a_signed_success_pays_the_order(
    write_client: TestClient, side: WriteSide, order: dict[str, Any]
) -> None:
    answer = deliver(write_client, side, event("payment_intent.succeeded", order["order_id"]))
    assert answer.status_code == 200
    assert answer.json()["status"] == "applied"
    paid = state(side, order["order_id"])
    assert (paid.status, paid.payment_ref) == ("paid", "pi_1")


@pytest.mark.parametrize(
    "fault", ["tampered body", "wrong secret", "stale timestamp", "no signature"]
)
def test_a_bad_signature_is_400_and_appends_nothing(
    write_client: TestClient, side: WriteSide, order: dict[str, Any], fault: str
) -> None:
    body = event("payment_intent.succeeded", order["order_id"])
    before = appended(side)
    if fault == "no signature":
        response = write_client.post("/webhooks/payments", content=body)
    else:
        signed_body = body.replace(b"2500", b"2499") if fault == "tampered body" else body
        response = write_client.post(
            "/webhooks/payments",
            content=body,
            headers={
                "Payment-Signature": sign(
                    "someone-elses-secret!"
                    if fault == "wrong secret"
                    else side.settings.webhook_secret,
                    int(time.time()) - (3600 if fault == "stale timestamp" else 0),
                    signed_body,
                )
            },
        )
    is_problem(response, 400, "bad-signature")
    assert appended(side) == before
    assert state(side, order["order_id"]).status == "reserved"


def test_the_same_provider_event_twice_is_one_payment(
    write_client: TestClient, side: WriteSide, order: dict[str, Any]
) -> None:
    body = event("payment_intent.succeeded", order["order_id"])
    first = deliver(write_client, side, body)
    after_first = appended(side)
    again = deliver(write_client, side, body)
    assert again.status_code == 200
    assert again.json()["position"] == first.json()["position"]
    assert appended(side) == after_first
    assert state(side, order["order_id"]).version == 3


def test_a_failed_payment_is_recorded(
    write_client: TestClient, side: WriteSide, order: dict[str, Any]
) -> None:
    body = event(
        "payment_intent.payment_failed",
        order["order_id"],
        last_payment_error={"message": "card declined"},
    )
    assert deliver(write_client, side, body).json()["status"] == "applied"
    assert state(side, order["order_id"]).payment_failures == 1


def test_a_refund_of_a_cancelled_paid_order_is_recorded(
    write_client: TestClient, side: WriteSide, order: dict[str, Any], auth: Auth
) -> None:
    deliver(write_client, side, event("payment_intent.succeeded", order["order_id"]))
    write_client.post(
        f"/orders/{order['order_id']}/cancellation",
        json={"reason": "no"},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    assert state(side, order["order_id"]).refund_due
    refund = event("charge.refunded", order["order_id"], event_id="evt_2", amount_refunded=2500)
    assert deliver(write_client, side, refund).json()["status"] == "applied"
    assert not state(side, order["order_id"]).refund_due


def test_event_types_not_used_are_acknowledged_and_ignored(
    write_client: TestClient, side: WriteSide
) -> None:
    before = appended(side)
    body = json.dumps({"id": "evt_9", "type": "customer.created", "data": {"object": {}}})
    answer = deliver(write_client, side, body.encode())
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert appended(side) == before


def test_a_signed_but_malformed_event_is_400(write_client: TestClient, side: WriteSide) -> None:
    body = json.dumps(
        {
            "id": "evt_3",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi", "amount": -1}},
        }
    ).encode()
    is_problem(deliver(write_client, side, body), 400, "bad-signature")
