"""The command headers (Idempotency-Key, If-Match) are read by the dispatcher itself, not
declared to FastAPI, so the contract must still describe them on every route that sends
a command, and on no other."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from infra.bootstrap import write_side
from infra.settings import Settings
from write_api.app import create_app
from write_api.dispatch import dispatcher

HEADERS = {"idempotency-key", "if-match"}


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, those of included routers too (our routers carry their own prefix
    and are included without one, so each route's path is its full path)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI's record of an included router
            yield from api_routes(route.original_router.routes)


def sends_commands(dependant: Dependant) -> bool:
    """Whether the route's dependency tree, as FastAPI solves it, includes the dispatcher."""
    return any(d.call is dispatcher or sends_commands(d) for d in dependant.dependencies)


@pytest.fixture(scope="module")
def write_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("command-headers"),
        database_url=None,
        read_database_url=None,
        clickhouse_url=None,
        jwt_secret="command-headers-secret-of-32-bytes!",
        payment_webhook_secret="command-headers-webhook-secret",
    )
    side = write_side(settings)
    try:
        yield create_app(side)
    finally:
        side.close()


def test_every_route_that_sends_a_command_describes_both_headers_once(write_app: Any) -> None:
    operations = write_app.openapi()["paths"]
    checked = 0
    for route in api_routes(write_app.routes):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            parameters = operations[route.path_format][method.lower()].get("parameters", [])
            headers = [p["name"] for p in parameters if p["in"] == "header"]
            if sends_commands(route.dependant):
                checked += 1
                assert sorted(headers) == sorted(HEADERS), f"{method} {route.path_format}"
            else:
                assert not HEADERS & set(headers), f"{method} {route.path_format}"
    # by hand: register, receipts, adjustments, price; place, pay, ship, deliver, cancel
    assert checked == 9


def test_the_headers_are_described_as_optional_strings_with_their_patterns(
    write_app: Any,
) -> None:
    parameters = write_app.openapi()["paths"]["/orders"]["post"]["parameters"]
    described = {p["name"]: p for p in parameters}
    assert described["idempotency-key"]["required"] is False
    assert described["idempotency-key"]["schema"]["pattern"] == "^[!-~]{1,255}$"
    assert described["if-match"]["required"] is False
    assert described["if-match"]["schema"]["pattern"] == '^(\\*|(W/)?"?[0-9]{1,18}"?)$'
    assert all(p["schema"]["type"] == "string" for p in described.values())
