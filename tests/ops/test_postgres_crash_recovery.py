"""Every process works again within seconds of PostgreSQL coming back from a hard crash.

The production processes (write API, read API, relay, projector, expiry worker) run as
`orderflow` subprocesses under load; PostgreSQL (durable settings) is SIGKILLed whole,
stays down a while, runs crash recovery and accepts connections again. From that moment
each process's first successful step is timed: a 201 from the write API, a 200 from the
read API, the relay's position, a projection watermark, an order the worker expired."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg
import pytest

from infra.bootstrap import read_side, write_side
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role
from tests.conftest import TEST_SECRET
from tests.harness.kafka import KafkaBroker
from tests.harness.ports import free_port
from tests.harness.postgres import PostgresServer
from tests.integration.test_crash_recovery import Service, subprocess_env
from tests.integration.test_kafka_pipeline import kafka_settings

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]
CRASHES = 2
DOWN_S = 12.0  # long enough for backoffs to grow
BACK_WITHIN_S = 5.0  # the promise: working again this soon after PostgreSQL accepts logins
GIVE_UP_S = 40.0
ADMIN = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'ops', Role.ADMIN, 3600)}"}
CUSTOMER = {"Authorization": f"Bearer {mint_token(TEST_SECRET, 'c1', Role.CUSTOMER, 3600)}"}


@pytest.fixture
def durable_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own, durable like production, for crashing."""
    server = PostgresServer(tmp_path / "pg", durable=True)
    server.start()
    yield server
    server.stop()


@dataclass
class Successes:
    """When a loop of requests last succeeded (monotonic time; 0 before any)."""

    last: float = 0.0
    count: int = 0

    def loop(self, request: Callable[[], bool], stop: threading.Event, pause_s: float) -> None:
        while not stop.is_set():
            try:
                if request():
                    self.last, self.count = time.monotonic(), self.count + 1
            except httpx2.HTTPError:
                pass  # down or restarting: the next request will tell
            stop.wait(pause_s)


@dataclass
class Probes:
    """Each process's progress as a number that grows when it works."""

    url: str
    writes: Successes = field(default_factory=Successes)
    reads: Successes = field(default_factory=Successes)

    def _scalar(self, sql: str) -> int | None:
        try:
            with psycopg.connect(self.url, connect_timeout=1, autocommit=True) as conn:
                row = conn.execute(sql).fetchone()
        except psycopg.Error:
            return None
        return int(row[0]) if row and row[0] is not None else 0

    def progress(self) -> dict[str, int | None]:
        return {
            "write-api": self.writes.count,
            "read-api": self.reads.count,
            "relay": self._scalar("SELECT position FROM relay_position"),
            "project": self._scalar("SELECT SUM(watermark) FROM projection_state"),
            "worker": self._scalar(
                "SELECT COUNT(*) FROM orderflow_events WHERE topic LIKE '%order.expired'"
            ),
        }


def wait_for_each_to_move(probes: Probes, since: dict[str, int | None]) -> dict[str, float]:
    """Seconds from now until each process's progress passed `since`."""
    began = time.monotonic()
    moved: dict[str, float] = {}
    while len(moved) < len(since) and time.monotonic() - began < GIVE_UP_S:
        for name, value in probes.progress().items():
            baseline = since[name]
            if name not in moved and value is not None and value > (baseline or 0):
                moved[name] = time.monotonic() - began
        time.sleep(0.05)
    return moved


def test_every_process_works_again_within_seconds_of_a_postgres_crash(
    durable_postgres: PostgresServer, kafka_broker: KafkaBroker, tmp_path: Path
) -> None:
    base = Settings(
        data_dir=tmp_path,
        database_url=durable_postgres.create_database("crashes"),
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
    )
    settings = kafka_settings(base, kafka_broker)
    assert settings.database_url is not None
    write_side(settings).close()
    read_side(settings).close()
    write_port, read_port = free_port(), free_port()
    env = subprocess_env(settings, tmp_path / "data")
    env.update(
        ORDERFLOW_PAYMENT_WEBHOOK_SECRET=settings.webhook_secret,
        ORDERFLOW_WRITE_PORT=str(write_port),
        ORDERFLOW_READ_PORT=str(read_port),
        ORDERFLOW_RESERVATION_TTL="PT1S",
        ORDERFLOW_WORKER_INTERVAL_SECONDS="0.2",
    )
    names = ("write-api", "read-api", "relay", "project", "worker")
    services = {name: Service(name, env, tmp_path / f"{name}.log") for name in names}
    probes = Probes(settings.database_url)
    stop = threading.Event()
    writer = httpx2.Client(base_url=f"http://127.0.0.1:{write_port}", timeout=5)
    reader = httpx2.Client(base_url=f"http://127.0.0.1:{read_port}", timeout=5)

    def place() -> bool:
        body = {"lines": [{"sku": "CRASH", "quantity": 1}]}
        return writer.post("/orders", json=body, headers=CUSTOMER).status_code == 201

    def read() -> bool:
        return reader.get("/inventory/CRASH", headers=ADMIN).status_code == 200

    loops = [
        threading.Thread(target=probes.writes.loop, args=(place, stop, 0.1), daemon=True),
        threading.Thread(target=probes.reads.loop, args=(read, stop, 0.1), daemon=True),
    ]
    recoveries: list[dict[str, float]] = []
    try:
        for service in services.values():
            service.start()
        item = {"sku": "CRASH", "name": "crash", "unit_price_cents": 100, "on_hand": 10**6}
        deadline = time.monotonic() + GIVE_UP_S
        while True:
            try:
                if writer.post("/inventory", json=item, headers=ADMIN).status_code == 201:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, services["write-api"].tail()
            time.sleep(0.2)
        for loop in loops:
            loop.start()
        started = wait_for_each_to_move(probes, dict.fromkeys(names, 0))
        assert set(started) == set(names), [services[n].tail() for n in names]

        for _ in range(CRASHES):
            durable_postgres.crash()
            time.sleep(DOWN_S)
            durable_postgres.restart()  # returns once it accepts logins again
            recoveries.append(wait_for_each_to_move(probes, probes.progress()))
            for name, service in services.items():
                assert service.process is not None
                assert service.process.poll() is None, f"{name} died\n{service.tail()}"
    finally:
        stop.set()
        for service in services.values():
            service.stop()
        writer.close()
        reader.close()
    print(f"\nseconds from PostgreSQL accepting logins to each process's next step: {recoveries}")
    for recovered in recoveries:
        assert set(recovered) == set(names), (recovered, [services[n].tail() for n in names])
        slow = {name: s for name, s in recovered.items() if s > BACK_WITHIN_S}
        assert slow == {}, (recoveries, [services[n].tail(15) for n in slow])
