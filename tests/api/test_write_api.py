"""The write API's HTTP contract (docs/api.md), run on embedded SQLite and on real PostgreSQL.

Every refusal is checked to append nothing: `appended()` is the event store's head."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from infra.bootstrap import WriteSide
from infra.http.auth import mint_token
from schemas.auth import Role

Auth = Callable[..., dict[str, str]]


def appended(side: WriteSide) -> int:
    return side.app.recorder.max_notification_id() or 0


def is_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{code}")
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


@pytest.fixture
def stocked(write_client: TestClient, auth: Auth) -> TestClient:
    for sku, price, on_hand in [("KB-1", 1000, 10), ("MS-2", 250, 2)]:
        response = write_client.post(
            "/inventory",
            json={"sku": sku, "name": sku, "unit_price_cents": price, "on_hand": on_hand},
            headers=auth(Role.OPERATOR),
        )
        assert response.status_code == 201
    return write_client


def place(
    client: TestClient, auth: Auth, lines: dict[str, int], customer: str = "alice"
) -> Response:
    body = {"lines": [{"sku": s, "quantity": q} for s, q in lines.items()]}
    return client.post("/orders", json=body, headers=auth(Role.CUSTOMER, customer))


def stock(side: WriteSide, sku: str) -> tuple[int, int]:
    from domain.inventory import InventoryItem

    item: object = side.app.repository.get(InventoryItem.create_id(sku))
    assert isinstance(item, InventoryItem)
    return item.on_hand, item.reserved


# --- inventory -------------------------------------------------------------------------


def test_registering_an_item_answers_201_with_version_position_and_etag(
    write_client: TestClient, auth: Auth, side: WriteSide
) -> None:
    response = write_client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 8900, "on_hand": 5},
        headers=auth(Role.OPERATOR),
    )
    assert response.status_code == 201
    assert response.json() == {"sku": "KB-1", "version": 2, "position": appended(side)}
    assert response.headers["etag"] == '"2"'


def test_registering_a_known_sku_is_409_and_appends_nothing(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    before = appended(side)
    response = stocked.post(
        "/inventory",
        json={"sku": "KB-1", "name": "x", "unit_price_cents": 1},
        headers=auth(Role.OPERATOR),
    )
    is_problem(response, 409, "sku-exists")
    assert appended(side) == before


def test_receipts_raise_stock_and_answer_the_levels(stocked: TestClient, auth: Auth) -> None:
    response = stocked.post(
        "/inventory/KB-1/receipts", json={"quantity": 5}, headers=auth(Role.OPERATOR)
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["on_hand"], body["reserved"], body["available"]) == (15, 0, 15)


def test_receipts_for_an_unknown_sku_are_404(stocked: TestClient, auth: Auth) -> None:
    response = stocked.post(
        "/inventory/NOPE/receipts", json={"quantity": 5}, headers=auth(Role.OPERATOR)
    )
    is_problem(response, 404, "unknown-sku")


def test_an_adjustment_below_reserved_stock_is_409_and_appends_nothing(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    assert place(stocked, auth, {"KB-1": 8}).status_code == 201
    before = appended(side)
    response = stocked.post(
        "/inventory/KB-1/adjustments",
        json={"delta": -3, "reason": "broken"},
        headers=auth(Role.OPERATOR),
    )
    is_problem(response, 409, "stock-adjustment-refused")
    assert appended(side) == before
    assert stock(side, "KB-1") == (10, 8)


def test_setting_a_price_answers_the_new_price(stocked: TestClient, auth: Auth) -> None:
    response = stocked.put(
        "/inventory/KB-1/price", json={"unit_price_cents": 1250}, headers=auth(Role.OPERATOR)
    )
    assert response.status_code == 200
    assert response.json()["unit_price_cents"] == 1250


# --- orders ----------------------------------------------------------------------------


def test_placing_an_order_prices_it_from_inventory_and_reserves_stock(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    response = place(stocked, auth, {"KB-1": 2, "MS-2": 1})
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "reserved"
    assert body["customer_id"] == "alice"
    assert body["total_cents"] == 2 * 1000 + 250
    assert body["lines"] == [
        {"sku": "KB-1", "quantity": 2, "unit_price_cents": 1000},
        {"sku": "MS-2", "quantity": 1, "unit_price_cents": 250},
    ]
    assert body["position"] == appended(side)
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert stock(side, "KB-1") == (10, 2)


def test_an_order_for_more_than_available_is_409_insufficient_stock_and_appends_nothing(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    before = appended(side)
    is_problem(place(stocked, auth, {"KB-1": 11}), 409, "insufficient-stock")
    assert appended(side) == before


def test_an_order_short_on_one_of_two_skus_reserves_nothing_in_either(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    before = appended(side)
    is_problem(place(stocked, auth, {"KB-1": 1, "MS-2": 3}), 409, "insufficient-stock")
    assert appended(side) == before
    assert (stock(side, "KB-1"), stock(side, "MS-2")) == ((10, 0), (2, 0))


def test_an_order_for_an_unknown_sku_is_404_and_appends_nothing(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    before = appended(side)
    is_problem(place(stocked, auth, {"NOPE": 1}), 404, "unknown-sku")
    assert appended(side) == before


def test_an_order_goes_from_paid_to_shipped_to_delivered(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    order = place(stocked, auth, {"KB-1": 3}).json()
    path = f"/orders/{order['order_id']}"
    paid = stocked.post(
        f"{path}/payments",
        json={"amount_cents": 3000, "payment_ref": "pi_1"},
        headers=auth(Role.OPERATOR),
    )
    assert (paid.status_code, paid.json()["status"]) == (200, "paid")
    shipped = stocked.post(
        f"{path}/shipments",
        json={"carrier": "DHL", "tracking_number": "T1"},
        headers=auth(Role.OPERATOR),
    )
    assert (shipped.status_code, shipped.json()["status"]) == (200, "shipped")
    assert stock(side, "KB-1") == (7, 0)
    delivered = stocked.post(f"{path}/delivery", json={}, headers=auth(Role.OPERATOR))
    assert delivered.json() == {
        "order_id": order["order_id"],
        "status": "delivered",
        "version": 5,
        "position": appended(side),
    }


def test_a_payment_that_does_not_match_the_total_is_422(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    order = place(stocked, auth, {"KB-1": 1}).json()
    before = appended(side)
    response = stocked.post(
        f"/orders/{order['order_id']}/payments",
        json={"amount_cents": 999, "payment_ref": "pi_1"},
        headers=auth(Role.OPERATOR),
    )
    is_problem(response, 409, "payment-amount-mismatch")
    assert appended(side) == before


@pytest.mark.parametrize(
    ("action", "body"),
    [("shipments", {"carrier": "DHL", "tracking_number": "T"}), ("delivery", {})],
)
def test_fulfilling_an_unpaid_order_is_409(
    stocked: TestClient, auth: Auth, side: WriteSide, action: str, body: dict[str, str]
) -> None:
    order = place(stocked, auth, {"KB-1": 1}).json()
    before = appended(side)
    response = stocked.post(
        f"/orders/{order['order_id']}/{action}", json=body, headers=auth(Role.OPERATOR)
    )
    is_problem(response, 409, "invalid-transition")
    assert appended(side) == before


def test_cancelling_releases_stock_and_cancelling_a_shipped_order_is_409(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    kept = place(stocked, auth, {"KB-1": 2}).json()
    cancelled = stocked.post(
        f"/orders/{kept['order_id']}/cancellation",
        json={"reason": "no"},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert stock(side, "KB-1") == (10, 0)

    shipped = place(stocked, auth, {"KB-1": 1}).json()
    path = f"/orders/{shipped['order_id']}"
    stocked.post(
        f"{path}/payments",
        json={"amount_cents": 1000, "payment_ref": "p"},
        headers=auth(Role.ADMIN),
    )
    stocked.post(
        f"{path}/shipments",
        json={"carrier": "DHL", "tracking_number": "T"},
        headers=auth(Role.OPERATOR),
    )
    before = appended(side)
    response = stocked.post(
        f"{path}/cancellation", json={"reason": "late"}, headers=auth(Role.OPERATOR)
    )
    is_problem(response, 409, "invalid-transition")
    assert appended(side) == before


def test_an_unknown_order_is_404(stocked: TestClient, auth: Auth) -> None:
    response = stocked.post(
        "/orders/5b6f3c52-1f7e-4f64-9a53-0d7f0d0e2b10/delivery",
        json={},
        headers=auth(Role.OPERATOR),
    )
    is_problem(response, 404, "unknown-order")


# --- idempotency, If-Match, correlation ------------------------------------------------


def test_the_same_idempotency_key_and_body_answers_the_first_response_and_appends_nothing(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    headers = auth(Role.CUSTOMER, "alice", **{"Idempotency-Key": "order-42"})
    body = {"lines": [{"sku": "KB-1", "quantity": 1}]}
    first = stocked.post("/orders", json=body, headers=headers)
    after_first = appended(side)
    again = stocked.post("/orders", json=body, headers=headers)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert appended(side) == after_first
    assert stock(side, "KB-1") == (10, 1)


def test_the_same_idempotency_key_with_another_body_is_422(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    headers = auth(Role.CUSTOMER, "alice", **{"Idempotency-Key": "order-42"})
    stocked.post("/orders", json={"lines": [{"sku": "KB-1", "quantity": 1}]}, headers=headers)
    before = appended(side)
    response = stocked.post(
        "/orders", json={"lines": [{"sku": "KB-1", "quantity": 2}]}, headers=headers
    )
    is_problem(response, 422, "idempotency-key-reused")
    assert appended(side) == before


def test_a_stale_if_match_is_412_and_a_current_one_goes_through(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    current = stocked.post(
        "/inventory/KB-1/receipts", json={"quantity": 1}, headers=auth(Role.OPERATOR)
    ).headers["etag"]
    before = appended(side)
    stale = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers=auth(Role.OPERATOR, **{"If-Match": '"1"'}),
    )
    is_problem(stale, 412, "stale-version")
    assert appended(side) == before
    fresh = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers=auth(Role.OPERATOR, **{"If-Match": current}),
    )
    assert fresh.status_code == 200


def test_a_malformed_if_match_is_400(stocked: TestClient, auth: Auth) -> None:
    response = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers=auth(Role.OPERATOR, **{"If-Match": "yesterday"}),
    )
    is_problem(response, 400, "bad-header")


def test_the_correlation_id_is_echoed_and_recorded_in_every_event(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    response = place(stocked, auth, {"KB-1": 1, "MS-2": 1})
    generated = response.headers["x-correlation-id"]
    assert generated
    given = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers=auth(Role.OPERATOR, **{"X-Correlation-ID": "trace-abc.1"}),
    )
    assert given.headers["x-correlation-id"] == "trace-abc.1"
    notifications = side.app.recorder.select_notifications(start=1, limit=1000)
    metas = [side.app.mapper.transcoder.decode(n.state)["_meta"] for n in notifications]
    order_events = metas[-5:-1]  # created, 2 x stock_reserved, reserved
    assert {m["correlation_id"] for m in order_events} == {generated}
    assert metas[-1]["correlation_id"] == "trace-abc.1"
    assert metas[-1]["actor"] == "tester"


# --- malformed, invalid, too large ------------------------------------------------------


def test_malformed_json_is_400(stocked: TestClient, auth: Auth, side: WriteSide) -> None:
    before = appended(side)
    response = stocked.post(
        "/inventory",
        content=b'{"sku": ',
        headers=auth(Role.OPERATOR, **{"content-type": "application/json"}),
    )
    is_problem(response, 400, "malformed-request")
    assert appended(side) == before


def test_invalid_values_are_422_with_field_errors(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    before = appended(side)
    response = stocked.post(
        "/orders",
        json={"lines": [{"sku": "KB-1", "quantity": 0}]},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    body = is_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"] == ["body", "lines", 0, "quantity"]
    assert appended(side) == before


def test_a_body_over_the_limit_is_413(stocked: TestClient, auth: Auth, side: WriteSide) -> None:
    before = appended(side)
    huge = {"sku": "BIG", "name": "x" * 100_000, "unit_price_cents": 1}
    is_problem(
        stocked.post("/inventory", json=huge, headers=auth(Role.OPERATOR)), 413, "payload-too-large"
    )
    assert appended(side) == before


# --- auth -------------------------------------------------------------------------------


def test_no_token_is_401_with_a_bearer_challenge(stocked: TestClient, side: WriteSide) -> None:
    before = appended(side)
    response = stocked.post("/inventory/KB-1/receipts", json={"quantity": 1})
    is_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert appended(side) == before


@pytest.mark.parametrize("token", ["not-a-jwt", "forged", "expired"])
def test_an_invalid_token_is_401(stocked: TestClient, settings_secret: str, token: str) -> None:
    minted = {
        "not-a-jwt": "abc.def.ghi",
        "forged": mint_token("another-secret-of-32-bytes-long!", "eve", Role.ADMIN, 60),
        "expired": mint_token(settings_secret, "bob", Role.ADMIN, -10),
    }[token]
    response = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers={"Authorization": f"Bearer {minted}"},
    )
    is_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        (Role.CUSTOMER, "post", "/inventory/KB-1/receipts", {"quantity": 1}),
        (Role.AUDITOR, "put", "/inventory/KB-1/price", {"unit_price_cents": 1}),
        (
            Role.AUDITOR,
            "post",
            "/orders",
            {"customer_id": "a", "lines": [{"sku": "KB-1", "quantity": 1}]},
        ),
    ],
)
def test_the_wrong_role_is_403_and_appends_nothing(
    stocked: TestClient,
    auth: Auth,
    side: WriteSide,
    role: Role,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    before = appended(side)
    response = stocked.request(method.upper(), path, json=body, headers=auth(role))
    is_problem(response, 403, "forbidden")
    assert appended(side) == before


def test_a_customer_orders_for_themselves_only(stocked: TestClient, auth: Auth) -> None:
    mine = stocked.post(
        "/orders",
        json={"lines": [{"sku": "KB-1", "quantity": 1}]},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    assert mine.json()["customer_id"] == "alice"
    theirs = stocked.post(
        "/orders",
        json={"customer_id": "bob", "lines": [{"sku": "KB-1", "quantity": 1}]},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    is_problem(theirs, 403, "forbidden")


def test_another_customers_order_does_not_exist_for_a_customer(
    stocked: TestClient, auth: Auth, side: WriteSide
) -> None:
    order = place(stocked, auth, {"KB-1": 1}, customer="alice").json()
    before = appended(side)
    response = stocked.post(
        f"/orders/{order['order_id']}/cancellation",
        json={"reason": "ha"},
        headers=auth(Role.CUSTOMER, "mallory"),
    )
    is_problem(response, 404, "unknown-order")
    assert appended(side) == before


def test_staff_must_name_the_customer(stocked: TestClient, auth: Auth) -> None:
    response = stocked.post(
        "/orders", json={"lines": [{"sku": "KB-1", "quantity": 1}]}, headers=auth(Role.OPERATOR)
    )
    is_problem(response, 422, "validation-error")


# --- the rest of the surface -------------------------------------------------------------


def test_openapi_describes_every_write_endpoint(write_client: TestClient) -> None:
    paths = write_client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/inventory",
        "/inventory/{sku}/receipts",
        "/inventory/{sku}/adjustments",
        "/inventory/{sku}/price",
        "/orders",
        "/orders/{order_id}/payments",
        "/orders/{order_id}/shipments",
        "/orders/{order_id}/delivery",
        "/orders/{order_id}/cancellation",
        "/customers/{customer_id}/personal-data",
    }


def test_health_and_ready_answer(write_client: TestClient) -> None:
    assert write_client.get("/health").json() == {"status": "ok"}
    ready = write_client.get("/ready")
    assert (ready.status_code, ready.json()["checks"]) == (200, {"event_store": "ok"})


def test_unknown_paths_are_problem_404(write_client: TestClient) -> None:
    is_problem(write_client.get("/nowhere"), 404, "http-error")


@pytest.fixture
def settings_secret(side: WriteSide) -> str:
    return side.settings.token_secret


def test_tokens_expire(stocked: TestClient, settings_secret: str) -> None:
    token = mint_token(settings_secret, "ops", Role.OPERATOR, 1)
    time.sleep(1.1)
    response = stocked.post(
        "/inventory/KB-1/receipts",
        json={"quantity": 1},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
