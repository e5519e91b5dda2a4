"""ORDERFLOW_RATE_LIMIT: per principal (else per client IP) on both APIs, 429 problems."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import read_side, write_side
from infra.http.auth import mint_token
from infra.http.rate_limit import parse_limit
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.conftest import TEST_SECRET
from tests.ops.helpers import is_problem
from write_api.app import create_app as create_write_app

LIMIT = 3


@pytest.fixture
def limited(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=None,
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
        rate_limit=f"{LIMIT}/minute",
    )


@pytest.fixture
def clients(limited: Settings) -> Iterator[tuple[TestClient, TestClient]]:
    writes, reads = write_side(limited), read_side(limited)
    with TestClient(create_write_app(writes)) as w, TestClient(create_read_app(reads)) as r:
        yield w, r
    writes.close()
    reads.close()


def bearer(sub: str, role: Role = Role.ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(TEST_SECRET, sub, role, 600)}"}


def test_the_limit_is_off_unless_configured() -> None:
    assert parse_limit(None) is None
    assert parse_limit("0") is None
    assert parse_limit(" ") is None
    item = parse_limit("120/minute")
    assert item is not None
    assert item.amount == 120


@pytest.mark.parametrize("api", ["write", "read"])
def test_one_request_over_the_limit_is_429_with_retry_after_and_others_are_unaffected(
    clients: tuple[TestClient, TestClient], api: str
) -> None:
    client = clients[0] if api == "write" else clients[1]
    path = "/inventory/NOPE" if api == "read" else "/orders/not-a-uuid/payments"
    call = client.get if api == "read" else client.post

    def hit(headers: dict[str, str]) -> int:
        response = call(path, headers=headers)
        status: int = response.status_code
        return status

    alice = bearer("alice")
    statuses = [hit(alice) for _ in range(LIMIT)]
    assert 429 not in statuses
    over = call(path, headers={**alice, "X-Correlation-ID": "limited-1"})
    body = is_problem(over, 429)
    assert body["type"].endswith("/rate-limited")
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert over.headers["x-correlation-id"] == "limited-1"

    # another principal has its own budget; probes are never limited
    assert all(hit(bearer("bob")) != 429 for _ in range(LIMIT))
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200

    # without a valid token the budget is the client IP's; a forged token does not help
    anonymous = [hit({}) for _ in range(LIMIT)]
    assert anonymous == [401] * LIMIT
    is_problem(call(path, headers={"Authorization": "Bearer forged"}), 429)
    assert hit(bearer("carol")) != 429


def test_without_a_limit_nothing_is_throttled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, jwt_secret=TEST_SECRET)
    side = read_side(settings)
    with TestClient(create_read_app(side)) as client:
        headers = bearer("alice")
        assert all(client.get("/inventory", headers=headers).status_code == 200 for _ in range(30))
    side.close()
