"""Customers are who their token says: an identity provider's subject such as Auth0's
`auth0|123` places orders and can be forgotten (it used to fail the customer id's pattern
with a 500), on embedded SQLite and on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from fastapi.testclient import TestClient

from domain.order import Order
from infra.bootstrap import WriteSide
from schemas.auth import Role

Headers = dict[str, str]
SUBJECTS = ("auth0|64b7f0c2a1", "google-oauth2|1043", "waad|x_y-z")


def test_provider_subjects_place_orders_and_are_forgotten(
    side: WriteSide, write_client: TestClient, auth: Callable[..., Headers]
) -> None:
    registered = write_client.post(
        "/inventory",
        json={"sku": "SUB-1", "name": "thing", "unit_price_cents": 300, "on_hand": 10},
        headers=auth(Role.ADMIN),
    )
    assert registered.status_code == 201, registered.text
    for subject in SUBJECTS:
        placed = write_client.post(
            "/orders",
            json={"lines": [{"sku": "SUB-1", "quantity": 1}]},
            headers=auth(Role.CUSTOMER, sub=subject),
        )
        assert placed.status_code == 201, placed.text
        order: Order = side.app.repository.get(UUID(placed.json()["order_id"]))
        assert isinstance(order, Order)
        assert order.customer_id == subject  # the oracle: the aggregate in the event store

        forgotten = write_client.delete(
            f"/customers/{subject.replace('|', '%7C')}/personal-data", headers=auth(Role.ADMIN)
        )
        assert forgotten.status_code == 200, forgotten.text
        assert forgotten.json()["customer_id"] == subject
