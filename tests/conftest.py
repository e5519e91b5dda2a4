"""Shared fixtures: real services started once per session, a fresh store per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.settings import Settings
from projections.feed import LogFeed
from read_api.app import create_app as create_read_app
from schemas.auth import Role
from tests.harness.kafka import KafkaBroker
from tests.harness.postgres import PostgresServer
from write_api.app import create_app

Headers = dict[str, str]
TEST_SECRET = "test-secret-of-thirty-two-bytes!"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=None,
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
    )


@pytest.fixture
def postgres_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Runs a test once on embedded SQLite and once on a real PostgreSQL server."""
    fixture = "sqlite_settings" if request.param == "sqlite" else "postgres_settings"
    chosen: Settings = request.getfixturevalue(fixture)
    return chosen


@pytest.fixture
def side(settings: Settings) -> Iterator[WriteSide]:
    wired = write_side(settings)
    yield wired
    wired.close()


@pytest.fixture
def write_client(side: WriteSide) -> Iterator[TestClient]:
    with TestClient(create_app(side)) as client:
        yield client


@pytest.fixture
def reads(settings: Settings) -> Iterator[ReadSide]:
    wired = read_side(settings)
    yield wired
    wired.close()


@pytest.fixture
def feed(side: WriteSide, reads: ReadSide) -> LogFeed:
    """Projections fed from the event log; tests call catch_up() when they want it."""
    return LogFeed(EventLog(side.app), reads.runner)


@pytest.fixture
def read_client(reads: ReadSide) -> Iterator[TestClient]:
    with TestClient(create_read_app(reads)) as client:
        yield client


@pytest.fixture
def auth(settings: Settings) -> Callable[..., Headers]:
    def headers(role: Role = Role.ADMIN, sub: str = "tester", **extra: str) -> Headers:
        token = mint_token(settings.token_secret, sub, role, 600)
        return {"Authorization": f"Bearer {token}", **extra}

    return headers
