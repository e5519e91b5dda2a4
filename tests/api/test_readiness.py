"""The write API's /ready with Kafka configured: ready when any bootstrap server accepts a
TCP connection (a real listener on loopback), a 503 problem naming Kafka and the last
server's error when none does, and /health answering either way."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import write_side
from infra.settings import Settings
from write_api.app import create_app


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port: int = server.getsockname()[1]
    return port  # nothing listens there any more: connections are refused


def ready(settings: Settings, servers: str) -> tuple[int, dict[str, object], str | None]:
    side = write_side(settings.model_copy(update={"kafka_bootstrap_servers": servers}))
    try:
        with TestClient(create_app(side)) as client:
            assert client.get("/health").json() == {"status": "ok"}
            answered = client.get("/ready")
    finally:
        side.close()
    return answered.status_code, answered.json(), answered.headers.get("retry-after")


def test_ready_when_a_later_bootstrap_server_accepts(
    sqlite_settings: Settings, listening: int, closed_port: int
) -> None:
    status, body, _ = ready(sqlite_settings, f"127.0.0.1:{closed_port}, 127.0.0.1:{listening}")
    assert (status, body) == (
        200,
        {"status": "ready", "checks": {"event_store": "ok", "kafka": "ok"}},
    )


def test_not_ready_names_kafka_and_the_last_servers_error(
    sqlite_settings: Settings, closed_port: int
) -> None:
    status, body, retry_after = ready(sqlite_settings, f"no-port,127.0.0.1:{closed_port}")
    assert (status, retry_after) == (503, "1")
    assert body["type"] == "/problems/not-ready"
    assert body["detail"] == "kafka: down: ConnectionRefusedError"

    status, body, _ = ready(sqlite_settings, f"127.0.0.1:{closed_port},no-port")
    assert (status, body["detail"]) == (503, "kafka: down: ValueError")
