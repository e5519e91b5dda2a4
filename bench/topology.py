"""The production topology as real processes: PostgreSQL, Kafka, and one process each of
`orderflow write-api`, `read-api`, `relay` and `project`; and where events wait in it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.measure.cpu import postmaster_pid
from bench.measure.report import status
from bench.measure.services import (
    ORDERFLOW_CLI,
    environment_without_settings,
    start_kafka,
    start_postgres,
    stop_process,
    wait_listening,
)
from infra.http.auth import mint_token
from projections.registry import SQL_BY_NAME
from schemas.auth import Role
from tests.harness.kafka import KafkaBroker
from tests.harness.ports import free_ports

JWT_SECRET = "bench-secret-of-at-least-32-bytes!"
WEBHOOK_SECRET = "bench-webhook-secret-0123"
START_TIMEOUT_S = 60.0
SAMPLE_S = 0.1


@dataclass(frozen=True)
class Topology:
    write_url: str
    read_url: str
    token: str
    dsn: str
    pids: dict[str, int]  # each OrderFlow process and the Kafka broker, by name
    postmaster: int  # PostgreSQL's, whose tree holds every backend


def orderflow_env(
    dsn: str, broker: KafkaBroker, data_dir: Path, ports: list[int]
) -> dict[str, str]:
    env = environment_without_settings()
    env.update(
        ORDERFLOW_DATA_DIR=str(data_dir),
        ORDERFLOW_DATABASE_URL=dsn,
        ORDERFLOW_JWT_SECRET=JWT_SECRET,
        ORDERFLOW_PAYMENT_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers,
        ORDERFLOW_WRITE_PORT=str(ports[0]),
        ORDERFLOW_READ_PORT=str(ports[1]),
        ORDERFLOW_LOG_LEVEL="WARNING",
    )
    return env


@contextmanager
def topology(work_dir: Path) -> Iterator[Topology]:
    """PostgreSQL, Kafka, and one process each of write API, read API, relay, projector."""
    with ExitStack() as stack:
        status.print("starting PostgreSQL and Kafka…")
        pg = start_postgres(work_dir, stack)
        broker = start_kafka(work_dir, stack)
        ports = free_ports(2)
        dsn = pg.create_database("orderflow")
        env = orderflow_env(dsn, broker, work_dir / "of", ports)
        subprocess.run([ORDERFLOW_CLI, "db", "init"], env=env, check=True, capture_output=True)
        status.print("starting write API, read API, relay and projector…")
        assert broker.pid is not None
        pids = {"Kafka": broker.pid}
        for command in ("write-api", "read-api", "relay", "project"):
            log = (work_dir / f"{command}.log").open("wb")
            stack.callback(log.close)
            process = subprocess.Popen([ORDERFLOW_CLI, command], env=env, stderr=log)
            stack.callback(stop_process, process)
            pids[command] = process.pid
        for port in ports:
            failure = f"nothing listens on {port}: see {work_dir}/*.log"
            wait_listening(port, START_TIMEOUT_S, failure, interval=0.1)
        token = mint_token(JWT_SECRET, "bench", Role.ADMIN, 24 * 3600)
        yield Topology(
            f"http://127.0.0.1:{ports[0]}",
            f"http://127.0.0.1:{ports[1]}",
            token,
            dsn,
            pids,
            postmaster_pid(dsn),
        )


class Backlog:
    """Samples where events wait: between the log's head and the relay, and between the
    relay and the slowest projection (positions, every SAMPLE_S)."""

    def __init__(self, dsn: str) -> None:
        self.dsn, self.relay, self.projector = dsn, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        names = list(SQL_BY_NAME)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.wait(SAMPLE_S):
                row = conn.execute(
                    "SELECT (SELECT max(notification_id) FROM orderflow_events),"
                    " (SELECT position FROM relay_position WHERE name = 'kafka'),"
                    " (SELECT min(watermark) FROM projection_state WHERE name = ANY(%s))",
                    (names,),
                ).fetchone()
                if row and None not in row:
                    head, relayed, projected = (int(v) for v in row)
                    self.relay = max(self.relay, head - relayed)
                    self.projector = max(self.projector, relayed - projected)

    def __enter__(self) -> Backlog:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
