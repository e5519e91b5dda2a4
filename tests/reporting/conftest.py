"""Reporting tests run on the real ClickHouse engine: chDB in this process, the same engine
behind clickhouse-connect's HTTP transport (tests/harness/clickhouse_http.py), and a real
ClickHouse server too whenever ORDERFLOW_CLICKHOUSE_URL is set.

chDB hosts one engine per process, on one directory: the whole session shares it, and each
test gets a database of its own on it (or on the real server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from infra.bootstrap import WriteSide, write_side
from infra.clickhouse.client import connect_chdb, connect_server
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.reporting_projector import ReportingProjector
from tests.harness.clickhouse_http import ClickHouseHTTP
from tests.reporting.workload import Clock, Expected, generate

SERVER_URL = os.environ.get("ORDERFLOW_CLICKHOUSE_URL")
BACKENDS = ["chdb", "http", *(["server"] if SERVER_URL else [])]


@dataclass
class ClickHouse:
    """A fresh database on one backend; `client()` opens another client on it."""

    backend: str
    database: str
    connect: Callable[[], Client]
    url: str | None = None  # HTTP backends: the server
    opened: list[Client] = field(default_factory=list)

    def client(self) -> Client:
        made = self.connect()
        self.opened.append(made)
        return made

    def runner(self, suffix: str = "") -> ReportingProjector:
        runner = ReportingProjector(self.client(), suffix)
        runner.setup()
        return runner


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.path.realpath(tmp_path_factory.mktemp("chdb")))


@pytest.fixture(scope="session")
def chdb_engine(chdb_dir: Path) -> Iterator[Client]:
    """Starts this process's chDB engine and keeps it for the session."""
    admin = connect_chdb(chdb_dir, "default_tests")
    yield admin
    admin.close()


@pytest.fixture(scope="session")
def clickhouse_http(chdb_engine: Client, chdb_dir: Path) -> Iterator[str]:
    """The test-only ClickHouse HTTP server over the session's chDB engine."""
    server = ClickHouseHTTP(str(chdb_dir))
    url = server.start()
    yield url
    server.stop()


def _database(
    request: pytest.FixtureRequest, backend: str, chdb_engine: Client, chdb_dir: Path
) -> Iterator[ClickHouse]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    if backend == "chdb":
        target = ClickHouse(backend, database, lambda: connect_chdb(chdb_dir, database))
        admin = chdb_engine
    else:
        url = request.getfixturevalue("clickhouse_http") if backend == "http" else SERVER_URL
        assert url is not None
        target = ClickHouse(backend, database, lambda: connect_server(url, database), url)
        admin = target.client()
    yield target
    admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    for client in target.opened:
        client.close()


@pytest.fixture(params=BACKENDS)
def clickhouse(
    request: pytest.FixtureRequest, chdb_engine: Client, chdb_dir: Path
) -> Iterator[ClickHouse]:
    """A fresh database on each backend in turn."""
    yield from _database(request, request.param, chdb_engine, chdb_dir)


@pytest.fixture
def http_database(
    request: pytest.FixtureRequest, chdb_engine: Client, chdb_dir: Path
) -> Iterator[ClickHouse]:
    """A fresh database behind the HTTP interface: for what needs a server URL."""
    yield from _database(request, "http", chdb_engine, chdb_dir)


@pytest.fixture
def chdb_database(
    request: pytest.FixtureRequest, chdb_engine: Client, chdb_dir: Path
) -> Iterator[ClickHouse]:
    """A fresh database on chDB only: for what does not depend on the transport."""
    yield from _database(request, "chdb", chdb_engine, chdb_dir)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WriteSide]:
    """An event store holding a generated workload (seeded, over several days), shared by
    the tests of a module: they only read it."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("shop"), database_url=None, jwt_secret="x" * 32
    )
    side = write_side(settings)
    with pytest.MonkeyPatch.context() as patch:
        generate(side.bus, Clock.patched(patch), seed=20261123, orders=90)
    yield side
    side.close()


@pytest.fixture(scope="module")
def log(shop: WriteSide) -> EventLog:
    return EventLog(shop.app)


@pytest.fixture(scope="module")
def expected(log: EventLog) -> Expected:
    """The reports' reference figures, folded from the event log."""
    figures = Expected.of(log.iterate(0))
    # the workload is worth testing with: sales on several days, every fate present
    assert len(figures.daily) >= 5
    assert {"paid", "shipped", "delivered", "cancelled"} <= set(figures.reached)
    return figures
