"""The command routes' lean path (write_api/command_route.py) changes no answer: a request
in order is sent without FastAPI's dependency solving, and every other request gets what
FastAPI's own way gives. The oracle for the refusals is FastAPI itself: with a dependency
override set, the lean path stands aside and every request goes FastAPI's way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.dependencies.utils import solve_dependencies
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from domain.inventory import InventoryItem
from domain.order import Order
from infra.bootstrap import WriteSide
from schemas.auth import Role
from write_api.command_route import LeanCall
from write_api.dispatch import dispatcher

Auth = Callable[..., dict[str, str]]
ORDER = {"lines": [{"sku": "KB-1", "quantity": 2}]}


def _nothing() -> None:
    """Overridden by nothing any route uses: only so that overrides are set."""


@pytest.fixture
def fastapis_way(write_client: TestClient) -> Iterator[Callable[[bool], None]]:
    """Turns the lean path off (True) or back on (False) for the client's app."""
    overrides = write_client.app.dependency_overrides  # type: ignore[attr-defined]

    def switch(on: bool) -> None:
        if on:
            overrides[_nothing] = _nothing
        else:
            overrides.pop(_nothing, None)

    yield switch
    switch(False)


@pytest.fixture
def stocked(write_client: TestClient, auth: Auth) -> TestClient:
    response = write_client.post(
        "/inventory",
        json={"sku": "KB-1", "name": "Keyboard", "unit_price_cents": 1000, "on_hand": 10},
        headers=auth(Role.OPERATOR),
    )
    assert response.status_code == 201
    return write_client


def appended(side: WriteSide) -> int:
    return side.app.recorder.max_notification_id() or 0


def command_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            if any(d.call is dispatcher for d in route.dependant.dependencies):
                yield route
        elif hasattr(route, "original_router"):  # FastAPI's record of an included router
            assert not route.include_context.dependencies, "the lean path would skip them"
            yield from command_routes(route.original_router.routes)


def test_every_command_route_has_a_lean_call(write_client: TestClient) -> None:
    routes = list(command_routes(write_client.app.routes))  # type: ignore[attr-defined]
    # by hand: register, receipts, adjustments, price; place, pay, ship, deliver, cancel
    assert len(routes) == 9
    assert all(LeanCall.of(route) is not None for route in routes)


def test_a_request_in_order_is_sent_without_fastapis_dependency_solving(
    stocked: TestClient, auth: Auth, side: WriteSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[object] = []

    async def counted(**kwargs: Any) -> Any:
        solved.append(kwargs["dependant"].call)
        return await solve_dependencies(**kwargs)

    monkeypatch.setattr("fastapi.routing.solve_dependencies", counted)
    customer = f"customer-{uuid4().hex}"  # a token no test verified before
    headers = auth(Role.CUSTOMER, customer)
    first = stocked.post("/orders", json=ORDER, headers=headers)
    assert first.status_code == 201, first.text
    assert len(solved) == 1  # verified in FastAPI's way, then known
    second = stocked.post("/orders", json=ORDER, headers=headers)
    assert second.status_code == 201, second.text
    assert len(solved) == 1
    order: object = side.app.repository.get(UUID(second.json()["order_id"]))
    assert isinstance(order, Order)
    assert order.customer_id == customer
    assert [(line["sku"], line["quantity"]) for line in order.lines] == [("KB-1", 2)]
    item: object = side.app.repository.get(InventoryItem.create_id("KB-1"))
    assert isinstance(item, InventoryItem)
    assert (item.on_hand, item.reserved) == (10, 4)

    refused = stocked.post("/orders", json={"lines": []}, headers=headers)
    assert refused.status_code == 422
    assert len(solved) == 2  # not in order: FastAPI's way


REFUSED: list[tuple[str, str, str, dict[str, str], Role | None]] = [
    # (name, path, body, extra headers, role of the token; None: no token)
    ("not JSON", "/orders", '{"lines": [', {}, Role.CUSTOMER),
    ("not UTF-8", "/orders", '{"lines": "\udcff"}', {}, Role.CUSTOMER),
    ("no lines", "/orders", "{}", {}, Role.CUSTOMER),
    ("empty lines", "/orders", '{"lines": []}', {}, Role.CUSTOMER),
    (
        "a field too many",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": 1}], "x": 1}',
        {},
        Role.CUSTOMER,
    ),
    (
        "a quantity as text",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": "1"}]}',
        {},
        Role.CUSTOMER,
    ),
    ("a body that is a list", "/orders", "[]", {}, Role.CUSTOMER),
    ("an empty body", "/orders", "", {}, Role.CUSTOMER),
    (
        "plain text",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": 1}]}',
        {"Content-Type": "text/plain"},
        Role.CUSTOMER,
    ),
    ("no token", "/orders", '{"lines": [{"sku": "KB-1", "quantity": 1}]}', {}, None),
    (
        "another scheme",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": 1}]}',
        {"Authorization": "Basic YTpi"},
        None,
    ),
    (
        "a forged token",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": 1}]}',
        {"Authorization": "Bearer not.a.token"},
        None,
    ),
    (
        "a customer receiving stock",
        "/inventory/KB-1/receipts",
        '{"quantity": 1}',
        {},
        Role.CUSTOMER,
    ),
    (
        "a SKU that is not one",
        "/inventory/no%20such%20sku!/receipts",
        '{"quantity": 1}',
        {},
        Role.OPERATOR,
    ),
    ("an order id that is not one", "/orders/not-a-uuid/delivery", "{}", {}, Role.OPERATOR),
    (
        "a bad Idempotency-Key",
        "/orders",
        '{"lines": [{"sku": "KB-1", "quantity": 1}]}',
        {"Idempotency-Key": "has space"},
        Role.CUSTOMER,
    ),
    (
        "a bad If-Match",
        "/inventory/KB-1/receipts",
        '{"quantity": 1}',
        {"If-Match": "v3"},
        Role.OPERATOR,
    ),
    (
        "a stale If-Match",
        "/inventory/KB-1/receipts",
        '{"quantity": 1}',
        {"If-Match": '"1"'},
        Role.OPERATOR,
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "extra", "role"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_refused_request_gets_fastapis_own_answer_and_appends_nothing(
    stocked: TestClient,
    auth: Auth,
    side: WriteSide,
    fastapis_way: Callable[[bool], None],
    path: str,
    body: str,
    extra: dict[str, str],
    role: Role | None,
) -> None:
    headers = {"Content-Type": "application/json"}
    if role is not None:
        headers |= auth(role, "alice")
        stocked.post("/orders", json=ORDER, headers=headers)  # the token is known now
    headers |= extra
    content = body.encode("utf-8", "surrogateescape")
    before = appended(side)
    lean = stocked.post(path, content=content, headers=headers)
    fastapis_way(True)
    own = stocked.post(path, content=content, headers=headers)
    assert lean.status_code >= 400, lean.text
    assert (lean.status_code, lean.json()) == (own.status_code, own.json())
    assert lean.headers["content-type"] == own.headers["content-type"]
    assert lean.headers.get("www-authenticate") == own.headers.get("www-authenticate")
    assert appended(side) == before


def test_an_answer_given_one_way_is_replayed_the_other_way(
    stocked: TestClient, auth: Auth, side: WriteSide, fastapis_way: Callable[[bool], None]
) -> None:
    """The Idempotency-Key's fingerprint is the same on both ways: same body, same key,
    the first answer again, however each request went."""
    headers = auth(Role.CUSTOMER, "alice")
    stocked.post("/orders", json=ORDER, headers=headers)  # the token is known now
    for first_lean, key in [(True, "key-lean-first"), (False, "key-fastapi-first")]:
        keyed = headers | {"Idempotency-Key": key}
        fastapis_way(not first_lean)
        first = stocked.post("/orders", json=ORDER, headers=keyed)
        after_first = appended(side)
        fastapis_way(first_lean)
        again = stocked.post("/orders", json=ORDER, headers=keyed)
        assert first.status_code == 201, first.text
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert appended(side) == after_first
