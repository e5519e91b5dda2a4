"""Write-path benchmark: OrderFlow's place-order against raw baselines, in one run.

On one fresh PostgreSQL server, with the same settings for everything, it measures
  1. POST /orders on OrderFlow's write API over real HTTP, at 1 and 16 concurrent clients,
     served by 1 and by 2 processes, orders spread over a catalogue;
  2. the same with every order on one of 3 hot SKUs whose streams hold 100,000 events each;
  3. a bare FastAPI endpoint doing one INSERT per request, served (by as many processes)
     and loaded the same way;
  4. pgbench doing one single-row INSERT per transaction, at 1 and 8 clients;
then prints throughput, latency, server CPU per order, the median number of stored events
a command read, and the ratios of OrderFlow to each baseline. Not a test.
Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/write_path.py [--seconds N] [--quick] [--durable]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import resource
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from types import FrameType
from typing import Any

import httpx2
import psycopg
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from rich.console import Console
from rich.table import Table

from domain.inventory import InventoryItem
from infra.bootstrap import write_side
from infra.eventstore.event_store import open_event_store
from infra.http.auth import mint_token
from infra.observability import metrics
from infra.settings import Settings
from schemas.auth import Role
from tests.harness.ports import accepts_connections, free_port
from tests.harness.postgres import PASSWORD, USER, PostgresServer, pg_bin_dir
from write_api.app import create_app

HTTP_CLIENTS = (1, 16)
WORKERS = (1, 2)
HOT_SKUS = 3
HOT_EVENTS = 100_000  # per hot SKU, stored before the hot workload starts
SEED_BATCH = 5_000  # events per append while seeding
PGBENCH_CLIENTS = (1, 8)
PAIRED_CLIENTS = dict(zip(HTTP_CLIENTS, PGBENCH_CLIENTS, strict=True))
SKU_COUNT = 200
ON_HAND = 1_000_000  # the most one registration accepts; orders take a few units each
POOL_SIZE = 10  # OrderFlow's default: 10 connections and as many again on overflow
JWT_SECRET = "bench-secret-of-at-least-32-bytes!"
SERVER_START_TIMEOUT_S = 30
ROWS_TABLE = "bench_rows"
ROWS_DDL = f"CREATE TABLE {ROWS_TABLE} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
INSERT_ROW = f"INSERT INTO {ROWS_TABLE} (payload) VALUES (%s) RETURNING id"
PGBENCH_ROW = '{"lines": [{"sku": "P-0001", "quantity": 2}, {"sku": "P-0002", "quantity": 1}]}'
DURABLE_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")
BUSY_WARNING_CORES = 0.25


@dataclass(frozen=True)
class Plan:
    """How long to measure and warm up, and on which PostgreSQL settings."""

    seconds: float
    warmup_s: float
    durable: bool


# --- the two servers under load -----------------------------------------------------------


def orderflow_app(dsn: str) -> FastAPI:
    return create_app(write_side(Settings(database_url=dsn, jwt_secret=JWT_SECRET)))


def bare_app(dsn: str) -> FastAPI:
    """One INSERT per request, run like OrderFlow's handlers: a sync endpoint on the
    threadpool with a psycopg pool of the same size, so the ratio isolates OrderFlow's work."""
    pool = ConnectionPool(dsn, min_size=POOL_SIZE, max_size=2 * POOL_SIZE, open=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.open(wait=True)
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/rows", status_code=201)
    def insert_row(body: dict[str, Any]) -> JSONResponse:
        with pool.connection() as conn:
            row = conn.execute(INSERT_ROW, (Jsonb(body),)).fetchone()
        assert row is not None
        return JSONResponse({"id": row[0]}, status_code=201)

    return app


APPS: dict[str, Callable[[str], FastAPI]] = {"orderflow": orderflow_app, "bare": bare_app}


def serve(app_name: str, dsn: str, port: int, dump_dir: str) -> None:
    """One server process: uvicorn, access log off for both apps alike. N of them share the
    port (SO_REUSEPORT: the kernel spreads connections), as `write-api --workers N` does
    with one socket. SIGUSR1 writes what its commands read (orderflow_command_events_read)."""
    os.setsid()  # out of the terminal's process group: Ctrl-C goes to the bench, which stops us
    app = APPS[app_name](dsn)
    signal.signal(signal.SIGUSR1, lambda *_: dump_events_read(Path(dump_dir)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # asyncio turns Nagle off only on sockets it made; accepted ones inherit this
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def dump_events_read(dump_dir: Path) -> None:
    buckets = {
        s.labels["le"]: s.value
        for metric in metrics.EVENTS_READ.collect()
        for s in metric.samples
        if s.name.endswith("_bucket")
    }
    target = dump_dir / f"events-read-{os.getpid()}.json"
    target.with_suffix(".tmp").write_text(json.dumps(buckets))
    target.with_suffix(".tmp").rename(target)


@dataclass(frozen=True)
class Server:
    port: int
    pids: tuple[int, ...]
    dump_dir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events_read(self) -> dict[float, float]:
        """Cumulative bucket counts of orderflow_command_events_read over all processes."""
        for old in self.dump_dir.glob("events-read-*.json"):
            old.unlink()
        for pid in self.pids:
            os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while len(list(self.dump_dir.glob("events-read-*.json"))) < len(self.pids):
            if time.monotonic() > deadline:
                raise RuntimeError("a server did not report what its commands read")
            time.sleep(0.01)
        total: dict[float, float] = {}
        for dump in self.dump_dir.glob("events-read-*.json"):
            for bound, value in json.loads(dump.read_text()).items():
                total[float(bound)] = total.get(float(bound), 0.0) + value
        return total


def median_bound(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the histogram bucket holding the median (NaN when none counted)."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    if not counts or counts[-1][1] == 0:
        return math.nan
    half = counts[-1][1] / 2
    return next(bound for bound, cumulative in counts if cumulative >= half)


@contextmanager
def running(app_name: str, dsn: str, workers: int = 1) -> Iterator[Server]:
    """Serves the app in processes of its own, so it never shares a GIL with the load."""
    port = free_port()
    dump_dir = Path(tempfile.mkdtemp(prefix="orderflow-bench-dumps-"))
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=serve, args=(app_name, dsn, port, str(dump_dir)), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not accepts_connections(port, timeout=0.2):
            if not all(p.is_alive() for p in processes) or time.monotonic() > deadline:
                raise RuntimeError(f"the {app_name} server did not start")
            time.sleep(0.05)
        time.sleep(0.5 if workers > 1 else 0)  # the others bind too (each builds its app)
        pids = tuple(p.pid for p in processes if p.pid is not None)
        yield Server(port, pids, dump_dir)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


# --- CPU accounting -------------------------------------------------------------------------


def _ticks_to_s(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from the state field on (the name before it may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int:
    return int(_stat(pid)[1])


def process_cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return _ticks_to_s(int(fields[11]) + int(fields[12]))  # utime, stime


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):  # gone since listed
                if parent_pid(int(entry.name)) == pid:
                    children.append(int(entry.name))
    return children


def tree_cpu_s(pid: int) -> float:
    """A process with its children: the live ones, and those it reaped (cutime, cstime)."""
    own = _ticks_to_s(sum(int(n) for n in _stat(pid)[11:15]))
    live = 0.0
    for child in child_pids(pid):
        with suppress(OSError, IndexError):
            live += process_cpu_s(child)
    return own + live


def machine_busy_s() -> float:
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return _ticks_to_s(sum(ticks) - ticks[3] - ticks[4])  # all but idle and iowait


def busy_cores(seconds: float = 1.0) -> float:
    """How busy the machine is with nothing of ours running: other work skews every figure."""
    before = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - before) / seconds


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(pg: PostgresServer) -> int:
    """The backend's parent, read while the backend lives: once the connection closes it
    may be gone from /proc."""
    with psycopg.connect(pg.dsn()) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return parent_pid(int(row[0]))


@dataclass(frozen=True)
class Processes:
    """Whose CPU a measurement accounts for; the rest of the machine's is other work."""

    loadgen: Callable[[], float]
    postmaster: int
    servers: tuple[int, ...] = ()


@dataclass(frozen=True)
class CpuClock:
    """Cumulative CPU seconds of each party, and of the whole machine."""

    wall: float
    loadgen: float
    server: float
    postgres: float
    machine: float

    @staticmethod
    def read(processes: Processes) -> CpuClock:
        server = sum(process_cpu_s(pid) for pid in processes.servers)
        return CpuClock(
            time.perf_counter(),
            processes.loadgen(),
            server,
            tree_cpu_s(processes.postmaster),
            machine_busy_s(),
        )


@dataclass(frozen=True)
class Cpu:
    """Average cores busy during a measurement (1.0 = one core all the time)."""

    loadgen: float
    server: float
    postgres: float
    other: float

    @staticmethod
    def between(start: CpuClock, end: CpuClock) -> Cpu:
        wall = end.wall - start.wall
        loadgen, server, postgres, machine = (
            (getattr(end, name) - getattr(start, name)) / wall
            for name in ("loadgen", "server", "postgres", "machine")
        )
        return Cpu(loadgen, server, postgres, max(0.0, machine - loadgen - server - postgres))


# --- results ----------------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Result:
    clients: int
    rate: float  # successful operations per second
    completed: int
    errors: int
    latencies_ms: list[float]
    cpu: Cpu
    first_error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def server_cpu_ms_per_order(self) -> float:
        """Server CPU per accepted operation, over the measured window."""
        return self.cpu.server * 1000 / self.rate if self.rate else math.nan

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "clients": self.clients,
            "per_s": round(self.rate, 1),
            "p50_ms": round(percentile(ordered, 0.50), 3),
            "p99_ms": round(percentile(ordered, 0.99), 3),
            "completed": self.completed,
            "errors": self.errors,
            "cpu_cores": {name: round(value, 2) for name, value in vars(self.cpu).items()},
            **(
                {"server_cpu_ms_per_order": round(self.server_cpu_ms_per_order, 3)}
                if self.cpu.server
                else {}  # pgbench: no server process of ours
            ),
            **self.extra,
        }


# --- HTTP load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    path: str
    body: bytes
    headers: dict[str, str]


MakeCall = Callable[[int], Call]  # client index -> its next request


@dataclass(frozen=True)
class Window:
    """Only requests that complete between start and end count; earlier ones warm up."""

    start: float
    end: float


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Connection:
    """A bare HTTP/1.1 keep-alive client for the load. A full client (httpx2) spent about
    1.5 ms of CPU per request here, as much as the bare server; this spends about 0.15 ms,
    so on two cores the load generator does not starve the server it measures."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, call: Call) -> Answer:
        head = [
            f"POST {call.path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(call.body)}",
            *(f"{name}: {value}" for name, value in call.headers.items()),
        ]
        self._writer.write("\r\n".join([*head, "", ""]).encode("latin-1") + call.body)
        status_line, *lines = (
            (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        )
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        if "content-length" not in headers:
            raise RuntimeError(f"answer without Content-Length: {status_line} {headers}")
        body = await self._reader.readexactly(int(headers["content-length"]))
        return Answer(int(status_line.split()[1]), body)

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def record(self, answer: Answer, seconds: float) -> None:
        if 200 <= answer.status < 300:
            self.latencies_ms.append(seconds * 1000)
            return
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{answer.status} {answer.body[:300].decode(errors='replace')}"


async def client_loop(
    port: int, make_call: MakeCall, index: int, window: Window, tally: Tally
) -> None:
    """One closed-loop client on its own keep-alive connection: next request on the answer."""
    connection = await Connection.open(port)
    try:
        while True:
            call = make_call(index)
            began = time.perf_counter()
            if began >= window.end:
                return
            answer = await connection.post(call)
            done = time.perf_counter()
            if window.start <= done <= window.end:
                tally.record(answer, done - began)
    finally:
        await connection.close()


async def cpu_over(window: Window, processes: Processes) -> Cpu:
    await asyncio.sleep(window.start - time.perf_counter())
    start = CpuClock.read(processes)
    await asyncio.sleep(window.end - time.perf_counter())
    return Cpu.between(start, CpuClock.read(processes))


async def load(
    server: Server, make_call: MakeCall, clients: int, plan: Plan, postmaster: int
) -> Result:
    now = time.perf_counter()
    window = Window(now + plan.warmup_s, now + plan.warmup_s + plan.seconds)
    tally = Tally()
    loops = [client_loop(server.port, make_call, i, window, tally) for i in range(clients)]
    processes = Processes(time.process_time, postmaster, server.pids)
    cpu, *_ = await asyncio.gather(cpu_over(window, processes), *loops)
    assert isinstance(cpu, Cpu)
    return Result(
        clients,
        len(tally.latencies_ms) / plan.seconds,
        len(tally.latencies_ms),
        tally.errors,
        tally.latencies_ms,
        cpu,
        tally.first_error,
    )


def order_lines(skus: list[str]) -> list[dict[str, Any]]:
    """1 to 3 distinct SKUs, 1 to 3 units each: spread over the catalogue, never out of stock."""
    chosen = random.sample(skus, k=random.randint(1, 3))
    return [{"sku": sku, "quantity": random.randint(1, 3)} for sku in chosen]


def place_order_calls(skus: list[str], clients: int) -> MakeCall:
    """A customer per client, each order with a fresh Idempotency-Key as real clients send."""
    tokens = [
        mint_token(JWT_SECRET, f"bench-customer-{i}", Role.CUSTOMER, 3600) for i in range(clients)
    ]

    def make(index: int) -> Call:
        headers = {
            "Authorization": f"Bearer {tokens[index]}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        return Call("/orders", json.dumps({"lines": order_lines(skus)}).encode(), headers)

    return make


def hot_order_calls(skus: list[str], clients: int) -> MakeCall:
    """Like place_order_calls, but every order takes 1-3 units of one of the hot SKUs."""
    spread = place_order_calls(skus, clients)

    def make(index: int) -> Call:
        call = spread(index)
        line = {"sku": random.choice(skus), "quantity": random.randint(1, 3)}
        return replace(call, body=json.dumps({"lines": [line]}).encode())

    return make


def insert_row_calls(skus: list[str]) -> MakeCall:
    """The same bodies as the orders, stored as they come."""

    def make(_: int) -> Call:
        body = json.dumps({"lines": order_lines(skus)}).encode()
        return Call("/rows", body, {"Content-Type": "application/json"})

    return make


# --- OrderFlow specifics ------------------------------------------------------------------------


def stock_catalogue(server: Server, prefix: str) -> list[str]:
    """A fresh catalogue per measurement, so each starts with the same short SKU streams."""
    skus = [f"{prefix}-{n:04d}" for n in range(SKU_COUNT)]
    token = mint_token(JWT_SECRET, "bench-operator", Role.OPERATOR, 3600)
    with httpx2.Client(base_url=server.base_url, timeout=30) as client:
        for sku in skus:
            response = client.post(
                "/inventory",
                json={"sku": sku, "name": sku, "unit_price_cents": 1299, "on_hand": ON_HAND},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
    return skus


def mean_stream_length(dsn: str, skus: list[str]) -> float:
    """Events per SKU aggregate: what a command would replay without cache or snapshots."""
    ids = [InventoryItem.create_id(sku) for sku in skus]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT avg(v)::float FROM (SELECT max(originator_version) AS v"
            " FROM orderflow_events WHERE originator_id = ANY(%s) GROUP BY originator_id) s",
            (ids,),
        ).fetchone()
    return float(row[0]) if row and row[0] is not None else math.nan


def seed_hot_skus(dsn: str) -> list[str]:
    """3 SKUs whose streams hold HOT_EVENTS events each, appended through the library in
    big batches, and a snapshot of each at its last version (what the default interval
    would have left), so a fresh server process starts from it."""
    skus = [f"HOT-{n}" for n in range(HOT_SKUS)]
    settings = Settings(database_url=dsn, jwt_secret=JWT_SECRET, snapshot_interval_inventory=0)
    app = open_event_store(settings, snapshots=True)
    assert app.snapshots is not None
    try:
        for sku in skus:
            item = InventoryItem(sku=sku, name=sku, unit_price_cents=1299)
            while item.version < HOT_EVENTS:
                for _ in range(min(SEED_BATCH, HOT_EVENTS - item.version)):
                    item.receive(1)
                app.save(item)
            snapshot_class = getattr(type(item), "Snapshot", type(app).snapshot_class)
            app.snapshots.put([snapshot_class.take(item)])
    finally:
        app.close()
    return skus


def measured(server: Server, calls: MakeCall, clients: int, plan: Plan, postmaster: int) -> Result:
    read_before = server.events_read()
    result = asyncio.run(load(server, calls, clients, plan, postmaster))
    read = median_bound(read_before, server.events_read())
    return replace(result, extra={**result.extra, "events_read_median_at_most": read})


def measure_orderflow(
    dsn: str, plan: Plan, postmaster: int, workers: int, hot: list[str]
) -> dict[str, dict[int, Result]]:
    spread, hottest = {}, {}
    with running("orderflow", dsn, workers) as server:
        for clients in HTTP_CLIENTS:
            skus = stock_catalogue(server, f"C{clients}W{workers}")
            result = measured(server, place_order_calls(skus, clients), clients, plan, postmaster)
            stream = round(mean_stream_length(dsn, skus), 1)
            spread[clients] = replace(
                result, extra={**result.extra, "sku_events_mean_at_end": stream}
            )
        clients = max(HTTP_CLIENTS)
        result = measured(server, hot_order_calls(hot, clients), clients, plan, postmaster)
        stream = round(mean_stream_length(dsn, hot), 1)
        hottest[clients] = replace(result, extra={**result.extra, "sku_events_mean_at_end": stream})
    return {f"orderflow/{workers}w": spread, f"hot/{workers}w": hottest}


def measure_bare(dsn: str, plan: Plan, postmaster: int, workers: int) -> dict[int, Result]:
    calls = insert_row_calls([f"B-{n:04d}" for n in range(SKU_COUNT)])
    with running("bare", dsn, workers) as server:
        return {
            clients: asyncio.run(load(server, calls, clients, plan, postmaster))
            for clients in HTTP_CLIENTS
        }


# --- pgbench --------------------------------------------------------------------------------


def pgbench_command(
    pg: PostgresServer,
    dbname: str,
    script: Path,
    clients: int,
    seconds: int,
    log_prefix: Path | None = None,
) -> list[str]:
    """Over TCP like the apps; prepared statements, its fastest protocol: the DB's ceiling."""
    return [
        str(pg_bin_dir() / "pgbench"),
        *("-h", "127.0.0.1", "-p", str(pg.port), "-U", USER),
        *("-n", "-M", "prepared", "-f", str(script)),
        *("-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1))),
        *("-T", str(seconds)),
        *(("-l", f"--log-prefix={log_prefix}") if log_prefix else ()),
        dbname,
    ]


def await_reaped(postmaster: int, children: int, timeout_s: float = 2.0) -> None:
    """pgbench's backends exit with it, and /proc reads a zombie's CPU as 0: only once the
    postmaster has reaped them does their CPU show, in its children's total."""
    deadline = time.monotonic() + timeout_s
    while len(child_pids(postmaster)) > children and time.monotonic() < deadline:
        time.sleep(0.01)


def run_pgbench(command: list[str]) -> str:
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def logged_latencies_ms(log_dir: Path) -> list[float]:
    """From pgbench's per-transaction logs: the third field is the latency in µs."""
    latencies = []
    for log in log_dir.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return latencies


def pgbench_figure(output: str, pattern: str) -> float:
    match = re.search(pattern, output)
    if match is None:
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output}")
    return float(match.group(1))


def measure_pgbench(
    pg: PostgresServer, dbname: str, work_dir: Path, plan: Plan
) -> dict[int, Result]:
    script = work_dir / "insert.sql"
    script.write_text(f"INSERT INTO {ROWS_TABLE} (payload) VALUES ('{PGBENCH_ROW}');\n")
    seconds = max(1, round(plan.seconds))
    warmup = pgbench_command(pg, dbname, script, max(PGBENCH_CLIENTS), max(1, round(plan.warmup_s)))
    run_pgbench(warmup)
    results = {}
    for clients in PGBENCH_CLIENTS:
        log_dir = work_dir / f"pgbench-log-{clients}"
        log_dir.mkdir()
        command = pgbench_command(pg, dbname, script, clients, seconds, log_dir / "tx")
        processes = Processes(children_cpu_s, postmaster_pid(pg))
        backends_before = len(child_pids(processes.postmaster))
        start = CpuClock.read(processes)
        output = run_pgbench(command)
        ended = time.perf_counter()
        await_reaped(processes.postmaster, backends_before)
        cpu = Cpu.between(start, replace(CpuClock.read(processes), wall=ended))
        tps = pgbench_figure(output, r"tps = ([\d.]+) \(without initial connection time\)")
        failed = re.search(r"number of failed transactions: (\d+)", output)
        results[clients] = Result(
            clients,
            tps,
            int(pgbench_figure(output, r"number of transactions actually processed: (\d+)")),
            int(failed.group(1)) if failed else 0,
            logged_latencies_ms(log_dir),
            cpu,
        )
    return results


# --- the database server ----------------------------------------------------------------------


def make_durable(pg: PostgresServer) -> None:
    """The harness runs without fsync for speed; --durable turns it all back on."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for setting in DURABLE_SETTINGS:
            conn.execute(f"ALTER SYSTEM SET {setting} = on")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while server_settings(pg)["fsync"] != "on":
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not take the durable settings")
        time.sleep(0.1)


def server_settings(pg: PostgresServer) -> dict[str, str]:
    names = ("server_version", *DURABLE_SETTINGS, "shared_buffers", "max_connections")
    with psycopg.connect(pg.dsn()) as conn:
        rows = {name: conn.execute(f"SHOW {name}").fetchone() for name in names}
    return {name: str(row[0]) for name, row in rows.items() if row is not None}


def create_rows_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROWS_DDL)


# --- report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    results: dict[str, dict[int, Result]]  # workload -> clients -> result
    postgres: dict[str, str]
    busy_before: float  # cores busy with other work just before the run
    elapsed_s: float

    def ratios(self) -> dict[str, float]:
        """Unsuffixed: 1 server process each; `,2w`: 2 each."""
        pgbench = self.results["pgbench"]
        figures = {}
        for workers in WORKERS:
            suffix = "" if workers == 1 else f",{workers}w"
            orderflow = self.results[f"orderflow/{workers}w"]
            bare = self.results[f"bare_fastapi/{workers}w"]
            hot = self.results[f"hot/{workers}w"]
            for clients, pg_clients in PAIRED_CLIENTS.items():
                of, raw, db = orderflow[clients].rate, bare[clients].rate, pgbench[pg_clients].rate
                figures[f"orderflow/bare@{clients}{suffix}"] = of / raw
                figures[f"orderflow@{clients}/pgbench@{pg_clients}{suffix}"] = of / db
                figures[f"bare@{clients}/pgbench@{pg_clients}{suffix}"] = raw / db
            top, one = max(HTTP_CLIENTS), min(HTTP_CLIENTS)
            figures[f"hot/spread@{top}{suffix}"] = hot[top].rate / orderflow[top].rate
            figures[f"hot/spread_p99@{top}{suffix}"] = _p99(hot[top]) / _p99(orderflow[top])
            figures[f"orderflow@{top}/@{one}{suffix}"] = orderflow[top].rate / orderflow[one].rate
        return {name: round(value, 4) for name, value in figures.items()}


def _p99(result: Result) -> float:
    return percentile(sorted(result.latencies_ms), 0.99)


def results_table(outcome: Outcome) -> Table:
    table = Table(title="Write path: throughput and latency (same PostgreSQL, same run)")
    for column in ("workload", "clients", "ops/s", "p50 ms", "p99 ms", "errors", "cpu ms/op"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for column in ("cpu: loadgen", "server", "postgres", "other"):
        table.add_column(column, justify="right")
    for name, by_clients in outcome.results.items():
        for result in by_clients.values():
            figures = result.summary()
            table.add_row(
                name,
                str(result.clients),
                f"{result.rate:,.0f}",
                f"{figures['p50_ms']:.2f}",
                f"{figures['p99_ms']:.2f}",
                str(result.errors),
                f"{result.server_cpu_ms_per_order:.2f}",
                *(f"{value:.2f}" for value in vars(result.cpu).values()),
            )
    return table


def ratio_table(outcome: Outcome) -> Table:
    table = Table(title="Ratios (1.0 = as fast as the baseline)")
    table.add_column("ratio")
    table.add_column("value", justify="right")
    for name, value in outcome.ratios().items():
        table.add_row(name, f"{value:.3f}")
    return table


def notes(outcome: Outcome) -> list[str]:
    pg, plan = outcome.postgres, outcome.plan
    return [
        f"PostgreSQL {pg['server_version']}: fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, "
        f"full_page_writes={pg['full_page_writes']} for all three workloads"
        + ("" if plan.durable else " (the test harness's settings; --durable for on)"),
        f"{os.cpu_count()} CPUs shared by all; cpu columns: average cores busy while measuring,"
        " in the load generator (pgbench itself for pgbench), the HTTP server process,"
        " PostgreSQL, and other work on the machine"
        f" ({outcome.busy_before:.2f} cores of it just before the run)",
        "HTTP: /1w and /2w: 1 or 2 uvicorn server processes per app sharing the port"
        " (SO_REUSEPORT; access log off), closed-loop raw HTTP/1.1 clients on asyncio in the"
        " bench process, one keep-alive connection each; cpu ms/op: server CPU per accepted op",
        "OrderFlow orders: customer token, Idempotency-Key, 1-3 lines over"
        f" {SKU_COUNT} SKUs (fresh catalogue per concurrency); hot: 1 line on one of"
        f" {HOT_SKUS} SKUs seeded with {HOT_EVENTS:,} events each (and a snapshot)",
        "events_read_median_at_most (JSON): the histogram bucket holding the median number"
        " of stored events and snapshots a command read",
        "pgbench: -M prepared over TCP, one INSERT per transaction; the ratios pair "
        + " and ".join(f"HTTP@{h} with pgbench@{p}" for h, p in PAIRED_CLIENTS.items()),
        f"{plan.seconds:g} s measured after {plan.warmup_s:g} s of warm-up each;"
        f" the whole run took {outcome.elapsed_s:.0f} s",
    ]


def warnings(outcome: Outcome) -> list[str]:
    found = [
        f"{name}@{result.clients}: {result.errors} errors, the first: {result.first_error}"
        for name, by_clients in outcome.results.items()
        for result in by_clients.values()
        if result.errors
    ]
    busy = [
        f"{name}@{result.clients}"
        for name, by_clients in outcome.results.items()
        for result in by_clients.values()
        if result.cpu.other > BUSY_WARNING_CORES
    ]
    if outcome.busy_before > BUSY_WARNING_CORES:
        busy.insert(0, "before the run")
    if busy:
        found.append(f"other work was using the CPUs ({', '.join(busy)}): figures are skewed")
    return found


def json_line(outcome: Outcome) -> str:
    return json.dumps(
        {
            "bench": "write_path",
            "seconds": outcome.plan.seconds,
            "warmup_s": outcome.plan.warmup_s,
            "cpus": os.cpu_count(),
            "busy_before_cores": round(outcome.busy_before, 2),
            "postgres": outcome.postgres,
            "results": {
                name: {str(c): r.summary() for c, r in by_clients.items()}
                for name, by_clients in outcome.results.items()
            },
            "ratios": outcome.ratios(),
            "elapsed_s": round(outcome.elapsed_s, 1),
        },
        separators=(",", ":"),
    )


def report(outcome: Outcome) -> None:
    console = Console(width=110)  # wide enough for the table even when piped to a file
    console.print(results_table(outcome))
    console.print(ratio_table(outcome))
    for note in notes(outcome):
        console.print(f"- {note}", highlight=False)
    for warning in warnings(outcome):
        console.print(f"[bold red]! {warning}", highlight=False)
    print(json_line(outcome), flush=True)


# --- main ---------------------------------------------------------------------------------------


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, help="per measurement (default 10, quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument(
        "--durable", action="store_true", help="fsync, synchronous_commit, full_page_writes on"
    )
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    return Plan(seconds=seconds, warmup_s=max(1.0, seconds / 5), durable=args.durable)


def exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    """So a `kill` unwinds through the cleanups like Ctrl-C does."""
    sys.exit(128 + signum)


def run(plan: Plan, work_dir: Path, stack: ExitStack) -> Outcome:
    began = time.monotonic()
    busy_before = busy_cores()
    pg = PostgresServer(work_dir / "postgres")
    pg.start()
    stack.callback(pg.stop)
    if plan.durable:
        make_durable(pg)
    baseline_dsn = pg.create_database("baseline")
    create_rows_table(baseline_dsn)
    orderflow_dsn = pg.create_database("orderflow")
    hot = seed_hot_skus(orderflow_dsn)
    postmaster = postmaster_pid(pg)
    results: dict[str, dict[int, Result]] = {}
    for workers in WORKERS:
        results |= measure_orderflow(orderflow_dsn, plan, postmaster, workers, hot)
        results[f"bare_fastapi/{workers}w"] = measure_bare(baseline_dsn, plan, postmaster, workers)
    results["pgbench"] = measure_pgbench(pg, "baseline", work_dir, plan)
    return Outcome(plan, results, server_settings(pg), busy_before, time.monotonic() - began)


def main() -> None:
    plan = parse_plan()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="orderflow-bench-") as tmp, ExitStack() as stack:
        outcome = run(plan, Path(tmp), stack)
    report(outcome)


if __name__ == "__main__":
    main()
