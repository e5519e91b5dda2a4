"""PostgreSQL stops under both APIs: they answer 503 problems, /ready names the store that
is down, and once it is back they serve again by themselves, without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from infra.bootstrap import read_side, write_side
from infra.http.auth import mint_token
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.conftest import TEST_SECRET
from tests.harness.postgres import PostgresServer
from tests.ops.helpers import is_problem
from write_api.app import create_app as create_write_app

pytestmark = pytest.mark.postgres
HEADERS = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'ops', Role.ADMIN, 600)}"}


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own: killing the session's would break other tests."""
    server = PostgresServer(tmp_path / "pg")
    server.start()
    yield server
    server.stop()


def eventually(check: Callable[[], Response], status: int, within_s: float = 60.0) -> Response:
    deadline = time.monotonic() + within_s
    while True:
        response = check()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def register(client: TestClient, sku: str) -> Response:
    body = {"sku": sku, "name": sku, "unit_price_cents": 100, "on_hand": 5}
    return client.post("/inventory", json=body, headers=HEADERS)


def test_both_apis_answer_503_while_postgres_is_down_and_recover_by_themselves(
    own_postgres: PostgresServer, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=own_postgres.create_database("outage"),
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
    )
    writes, reads = write_side(settings), read_side(settings)
    with TestClient(create_write_app(writes)) as w, TestClient(create_read_app(reads)) as r:
        assert register(w, "BEFORE").status_code == 201
        assert w.get("/ready").json() == {"status": "ready", "checks": {"event_store": "ok"}}
        assert r.get("/ready").status_code == 200

        # the test server runs with synchronous_commit=off: make the set-up durable before
        # the crash, or recovery would lose the tables created a moment ago
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        own_postgres.kill()

        is_problem(eventually(lambda: register(w, "DURING"), 503), 503)
        down = is_problem(w.get("/ready"), 503)
        assert "event_store: down" in down["detail"]
        read = is_problem(eventually(lambda: r.get("/inventory", headers=HEADERS), 503), 503)
        assert read["type"].endswith("/unavailable")
        not_ready = is_problem(r.get("/ready"), 503)
        assert "read_store: down" in not_ready["detail"]
        assert "event_store: down" in not_ready["detail"]
        assert w.get("/health").status_code == 200  # alive, only not ready

        own_postgres.restart()

        assert eventually(lambda: register(w, "AFTER"), 201).status_code == 201
        assert eventually(lambda: w.get("/ready"), 200).status_code == 200
        assert eventually(lambda: r.get("/ready"), 200).status_code == 200
        listed = eventually(lambda: r.get("/inventory", headers=HEADERS), 200)
        assert listed.status_code == 200, listed.text
    writes.close()
    reads.close()
