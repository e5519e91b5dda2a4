"""Freshness benchmark: how long after its 201 an order shows on the read API.

On one fresh PostgreSQL server and one fresh Kafka broker it starts the production
topology as real processes (`orderflow write-api`, `read-api`, `relay`, `project`), then
places orders over HTTP at fixed rates, open loop (each at its scheduled time, whatever
the answers before it). From each order's 201 it polls `GET /orders/{id}` (no
`min_position`) until the order shows, and reports the time it took: p50, p99 and max per
rate. It runs 200 orders/s first, then rises until p99 reaches 1 s or the write API falls
behind the offered rate; the highest rate before that is the one it sustains. Not a test.
Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/freshness.py [--seconds S] [--rates 200,300,...] [--poll-ms MS]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from types import FrameType

import httpx2
import psycopg
from rich.console import Console
from rich.table import Table

from infra.http.auth import mint_token
from projections.registry import SQL_BY_NAME
from schemas.auth import Role
from tests.harness.kafka import KafkaBroker, ensure_kafka_jars
from tests.harness.ports import accepts_connections, free_ports
from tests.harness.postgres import PostgresServer

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
JWT_SECRET = "bench-secret-of-at-least-32-bytes!"
WEBHOOK_SECRET = "bench-webhook-secret-0123"
GOAL_RATE = 200
GOAL_P99_MS = 100.0
SUSTAINED_P99_MS = 1000.0
SUSTAINED_SHARE = 0.95  # of the offered rate the write API must achieve
DEFAULT_RATES = (200, 100, 300, 400, 600, 800, 1000)  # 200 first: the goal's rate
DEFAULT_SECONDS = 20.0
VISIBLE_LIMIT_S = 30.0  # an order not shown by then counts as never shown
START_TIMEOUT_S = 60.0
SKUS = 50
SAMPLE_S = 0.1

console = Console(width=110)
status = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Step:
    offered: int  # orders per second asked for
    achieved: float  # 201s per second of the schedule
    orders: int
    refused: int  # answers other than 201
    unseen: int  # placed but not shown within VISIBLE_LIMIT_S
    p50_ms: float
    p99_ms: float
    max_ms: float
    gets: int
    relay_behind: int  # most positions the relay was behind the head, sampled
    projector_behind: int  # most positions a projection's watermark was behind the relay

    @property
    def sustained(self) -> bool:
        return (
            self.achieved >= SUSTAINED_SHARE * self.offered
            and self.unseen == 0
            and self.p99_ms < SUSTAINED_P99_MS
        )


# --- the topology ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    write_url: str
    read_url: str
    token: str
    dsn: str


def orderflow_env(
    dsn: str, broker: KafkaBroker, data_dir: Path, ports: list[int]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
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
        pg = PostgresServer(work_dir / "postgres")
        pg.start()
        stack.callback(pg.stop)
        ensure_kafka_jars()
        broker = KafkaBroker(work_dir / "kafka")
        broker.start()
        stack.callback(broker.stop)
        ports = free_ports(2)
        dsn = pg.create_database("orderflow")
        env = orderflow_env(dsn, broker, work_dir / "of", ports)
        subprocess.run([ORDERFLOW, "db", "init"], env=env, check=True, capture_output=True)
        status.print("starting write API, read API, relay and projector…")
        for command in (["write-api"], ["read-api"], ["relay"], ["project"]):
            log = (work_dir / f"{command[0]}.log").open("wb")
            stack.callback(log.close)
            process = subprocess.Popen([ORDERFLOW, *command], env=env, stderr=log)
            stack.callback(stop_process, process)
        for port in ports:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not accepts_connections(port, timeout=0.2):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {port}: see {work_dir}/*.log")
                time.sleep(0.1)
        token = mint_token(JWT_SECRET, "bench", Role.ADMIN, 24 * 3600)
        yield Topology(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", token, dsn)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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


# --- the load ---------------------------------------------------------------------------------


def headers(topology: Topology) -> dict[str, str]:
    return {"Authorization": f"Bearer {topology.token}"}


def stock(topology: Topology) -> None:
    with httpx2.Client(base_url=topology.write_url, headers=headers(topology), timeout=30) as c:
        for n in range(SKUS):
            item = {"sku": f"F-{n:03d}", "name": f"item {n}", "unit_price_cents": 500}
            answer = c.post("/inventory", json={**item, "on_hand": 1_000_000})
            if answer.status_code != 201:
                raise RuntimeError(f"registering {item['sku']}: {answer.status_code} {answer.text}")


async def one_order(
    client: httpx2.AsyncClient, topology: Topology, n: int, poll_s: float, found: list[float]
) -> tuple[bool, int]:
    """Places order n; returns (placed, GETs made) and appends its visibility time."""
    lines = [{"sku": f"F-{n % SKUS:03d}", "quantity": 1}]
    placed = await client.post(
        f"{topology.write_url}/orders", json={"customer_id": f"c{n % 500}", "lines": lines}
    )
    if placed.status_code != 201:
        return False, 0
    answered = time.perf_counter()
    url = f"{topology.read_url}/orders/{placed.json()['order_id']}"
    gets = 0
    while time.perf_counter() - answered < VISIBLE_LIMIT_S:
        gets += 1
        if (await client.get(url)).status_code == 200:
            found.append(time.perf_counter() - answered)
            break
        await asyncio.sleep(poll_s)
    return True, gets


async def drive(topology: Topology, rate: int, seconds: float, poll_s: float) -> Step:
    limits = httpx2.Limits(max_connections=400, max_keepalive_connections=400)
    found: list[float] = []
    with Backlog(topology.dsn) as backlog:
        results = await _place_all(topology, rate, seconds, poll_s, limits, found)
    placed = sum(1 for ok, _ in results if ok)
    ms = sorted(1000 * s for s in found) or [float("nan")]
    return Step(
        offered=rate,
        achieved=round(placed / seconds, 1),
        orders=placed,
        refused=int(rate * seconds) - placed,
        unseen=placed - len(found),
        p50_ms=round(statistics.median(ms), 1),
        p99_ms=round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        max_ms=round(ms[-1], 1),
        gets=sum(gets for _, gets in results),
        relay_behind=backlog.relay,
        projector_behind=backlog.projector,
    )


async def _place_all(
    topology: Topology,
    rate: int,
    seconds: float,
    poll_s: float,
    limits: httpx2.Limits,
    found: list[float],
) -> list[tuple[bool, int]]:
    async with httpx2.AsyncClient(headers=headers(topology), timeout=60, limits=limits) as client:
        total = int(rate * seconds)
        began = time.perf_counter()
        tasks = []
        for n in range(total):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_order(client, topology, n, poll_s, found)))
        return await asyncio.gather(*tasks)


# --- report ----------------------------------------------------------------------------------


def report(steps: list[Step], seconds: float, poll_ms: float) -> None:
    table = Table(title=f"Freshness: 201 until GET /orders/{{id}} shows it ({seconds:g} s a rate)")
    columns = ("offered/s", "achieved/s", "orders", "p50 ms", "p99 ms", "max ms", "GETs/s")
    for column in (*columns, "relay behind", "projector behind"):
        table.add_column(column, justify="right")
    table.add_column("sustained")
    for s in steps:
        table.add_row(
            str(s.offered),
            f"{s.achieved:g}",
            str(s.orders),
            f"{s.p50_ms:g}",
            f"{s.p99_ms:g}",
            f"{s.max_ms:g}",
            f"{s.gets / seconds:.0f}",
            str(s.relay_behind),
            str(s.projector_behind),
            "yes" if s.sustained else "no",
        )
    console.print(table)
    at_goal = next((s for s in steps if s.offered == GOAL_RATE), None)
    sustained = max((s.offered for s in steps if s.sustained), default=0)
    console.print(
        f"- polled every {poll_ms:g} ms from the 201; {os.cpu_count()} CPUs shared by every"
        " process and this load generator; sustained: p99 under"
        f" {SUSTAINED_P99_MS:g} ms, every order shown, ≥ {SUSTAINED_SHARE:.0%} of the rate placed;"
        f" behind: the most positions waiting, sampled every {SAMPLE_S:g} s, between the log's"
        " head and the relay, and between the relay and the slowest projection",
        highlight=False,
    )
    if at_goal is not None:
        verdict = "met" if at_goal.p99_ms <= GOAL_P99_MS and at_goal.sustained else "NOT met"
        console.print(f"- goal p99 ≤ {GOAL_P99_MS:g} ms at {GOAL_RATE}/s: {verdict}")
    console.print(f"- highest rate sustained: {sustained}/s")
    line = {
        "bench": "freshness",
        "seconds_per_rate": seconds,
        "poll_ms": poll_ms,
        "cpus": os.cpu_count(),
        "steps": [asdict(s) for s in steps],
        "at_goal_rate": asdict(at_goal) if at_goal else None,
        "goal_met": bool(at_goal and at_goal.p99_ms <= GOAL_P99_MS and at_goal.sustained),
        "sustained_rate": sustained,
    }
    print(json.dumps(line, separators=(",", ":")), flush=True)


# --- main ---------------------------------------------------------------------------------------


def exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    sys.exit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per rate")
    parser.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        help="orders/s to try, in order; after the first, it stops at the first not sustained",
    )
    parser.add_argument("--poll-ms", type=float, default=10.0, help="GET interval per order")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    steps: list[Step] = []
    with (
        tempfile.TemporaryDirectory(prefix="orderflow-freshness-") as tmp,
        topology(Path(tmp)) as running,
    ):
        stock(running)
        for n, rate in enumerate(rates):
            status.print(f"{rate} orders/s for {args.seconds:g} s…")
            step = asyncio.run(drive(running, rate, args.seconds, args.poll_ms / 1000))
            steps.append(step)
            status.print(f"  p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, max {step.max_ms} ms")
            if n > 0 and not step.sustained:
                break
    report(steps, args.seconds, args.poll_ms)


if __name__ == "__main__":
    main()
