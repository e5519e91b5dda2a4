"""What a client generator, a browser front end and a script expect of both APIs: a
self-contained OpenAPI description, enumerated filters, CORS only where configured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.bootstrap import read_side, write_side
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.conftest import Headers
from write_api.app import create_app as create_write_app

ORDER_STATUSES = {
    "created",
    "reserved",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "expired",
    "failed",
}


@pytest.fixture(params=["write", "read"])
def api(request: pytest.FixtureRequest, sqlite_settings: Settings) -> Iterator[FastAPI]:
    if request.param == "write":
        writes = write_side(sqlite_settings)
        yield create_write_app(writes)
        writes.close()
    else:
        reads = read_side(sqlite_settings, reports=False)
        yield create_read_app(reads)
        reads.close()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict), f"{ref} does not resolve"
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_reference_in_the_openapi_description_resolves(api: FastAPI) -> None:
    document = TestClient(api).get("/openapi.json").json()
    refs = set(_refs(document))
    assert "#/components/schemas/Problem" in refs
    for ref in refs:
        _resolve(document, ref)
    problem = _resolve(document, "#/components/schemas/Problem")
    assert set(problem["required"]) == {"type", "title", "status", "detail"}


def test_an_unknown_status_filter_is_a_422_naming_the_accepted_values(
    read_client: TestClient, auth: Any
) -> None:
    headers: Headers = auth(Role.ADMIN)
    answer = read_client.get("/orders", params={"status": "bogus"}, headers=headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    message = answer.json()["errors"][0]["msg"]
    assert all(f"'{status}'" in message for status in ORDER_STATUSES), message
    assert read_client.get("/orders", params={"status": "paid"}, headers=headers).status_code == 200


def test_the_status_filter_is_an_enum_in_the_description(read_client: TestClient) -> None:
    document = read_client.get("/openapi.json").json()
    parameters = document["paths"]["/orders"]["get"]["parameters"]
    status = next(p for p in parameters if p["name"] == "status")
    schema = status["schema"]
    enum_schema = _resolve(document, schema["anyOf"][0]["$ref"]) if "anyOf" in schema else schema
    assert set(enum_schema["enum"]) == ORDER_STATUSES


PREFLIGHT = {
    "Origin": "https://shop.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
}


def test_cors_is_off_by_default(api: FastAPI) -> None:
    answer = TestClient(api).options("/health", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("which", ["write", "read"])
def test_cors_allows_the_configured_origins_only(which: str, sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(
        update={"cors_origins": "https://shop.example.com, https://admin.example.com"}
    )
    if which == "write":
        side_w = write_side(settings)
        app, close = create_write_app(side_w), side_w.close
    else:
        side_r = read_side(settings, reports=False)
        app, close = create_read_app(side_r), side_r.close
    client = TestClient(app)
    try:
        allowed = client.options("/health", headers=PREFLIGHT)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
        assert "idempotency-key" in allowed.headers["access-control-allow-headers"].lower()
        stranger = client.options("/health", headers={**PREFLIGHT, "Origin": "https://evil.test"})
        assert "access-control-allow-origin" not in stranger.headers
        simple = client.get("/health", headers={"Origin": "https://admin.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://admin.example.com"
        assert "x-correlation-id" in simple.headers["access-control-expose-headers"].lower()
    finally:
        close()
