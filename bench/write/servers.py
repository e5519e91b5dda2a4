"""The two HTTP servers under load, each in processes of its own: OrderFlow's write API and
a bare FastAPI endpoint doing one INSERT per request."""

from __future__ import annotations

import importlib
import json
import math
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from bench.measure.services import wait_listening
from bench.write.database import ROWS_TABLE
from infra import heap
from infra.bootstrap import write_side
from infra.observability import metrics
from infra.routing.slots import DIRECTORY_ENV
from infra.settings import Settings
from tests.harness.ports import free_port
from write_api.app import create_app
from write_api.routing import router_for

POOL_SIZE = 10  # OrderFlow's default: 10 connections and as many again on overflow
JWT_SECRET = "bench-secret-of-at-least-32-bytes!"
SERVER_START_TIMEOUT_S = 30
INSERT_ROW = f"INSERT INTO {ROWS_TABLE} (payload) VALUES (%s) RETURNING id"


def orderflow_app(dsn: str) -> FastAPI:
    """With several processes, each routes contended SKUs as `write-api --workers` does."""
    writes = write_side(Settings(database_url=dsn, jwt_secret=JWT_SECRET))
    return create_app(writes, router_for(writes))


def bare_pool(dsn: str, **kwargs: Any) -> ConnectionPool[Any]:
    """A psycopg pool the size of OrderFlow's, opened by `app_with`'s app."""
    return ConnectionPool(
        dsn, min_size=POOL_SIZE, max_size=2 * POOL_SIZE, open=False, kwargs=kwargs or None
    )


def app_with(pool: ConnectionPool[Any]) -> FastAPI:
    """A bare FastAPI app whose lifespan opens and closes `pool`."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.open(wait=True)
        try:
            yield
        finally:
            pool.close()

    return FastAPI(lifespan=lifespan)


def bare_app(dsn: str) -> FastAPI:
    """One INSERT per request, run like OrderFlow's handlers: a sync endpoint on the
    threadpool with a psycopg pool of the same size, so the ratio isolates OrderFlow's work."""
    pool = bare_pool(dsn)
    app = app_with(pool)

    @app.post("/rows", status_code=201)
    def insert_row(body: dict[str, Any]) -> JSONResponse:
        with pool.connection() as conn:
            row = conn.execute(INSERT_ROW, (Jsonb(body),)).fetchone()
        assert row is not None
        return JSONResponse({"id": row[0]}, status_code=201)

    return app


APPS: dict[str, Callable[[str], FastAPI]] = {"orderflow": orderflow_app, "bare": bare_app}


def app_factory(name: str) -> Callable[[str], FastAPI]:
    """One of APPS, or another bench's factory named "module:function"."""
    if ":" not in name:
        return APPS[name]
    module, function = name.split(":")
    factory: Callable[[str], FastAPI] = getattr(importlib.import_module(module), function)
    return factory


def serve(app_name: str, dsn: str, port: int, dump_dir: str) -> None:
    """One server process: uvicorn, access log off for both apps alike. N of them share the
    port (SO_REUSEPORT: the kernel spreads connections), as `write-api --workers N` does
    with one socket. SIGUSR1 writes what its commands read (orderflow_command_events_read)."""
    os.setsid()  # out of the terminal's process group: Ctrl-C goes to the bench, which stops us
    app = app_factory(app_name)(dsn)
    signal.signal(signal.SIGUSR1, lambda *_: dump_events_read(Path(dump_dir)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # asyncio turns Nagle off only on sockets it made; accepted ones inherit this
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    heap.settle()  # as OrderFlow's own servers do (infra/heap.py); the bare one too, alike
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
    # what `write-api --workers N` tells its workers: N, and where their slots are
    routing = {DIRECTORY_ENV: str(dump_dir), "ORDERFLOW_WRITE_WORKERS": str(workers)}
    saved = {name: os.environ.get(name) for name in routing}
    os.environ.update(routing)
    try:
        for process in processes:
            process.start()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        wait_listening(
            port,
            SERVER_START_TIMEOUT_S,
            f"the {app_name} server did not start",
            alive=lambda: all(p.is_alive() for p in processes),
        )
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
