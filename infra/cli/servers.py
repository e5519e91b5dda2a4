"""The servers: `orderflow dev` (everything embedded in one process), and the write and
read APIs on their own."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from commands.demo import load_demo
from infra import heap
from infra.bootstrap import read_side, reporting_projector, write_side
from infra.cli.background import audit_checkpointer, expiry_worker
from infra.cli.console import console
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.routing.slots import DIRECTORY_ENV
from infra.settings import Settings
from projections.feed import LogFeed
from schemas.auth import Role

commands = typer.Typer()


def _serve(*servers: uvicorn.Server) -> None:
    async def run_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    # the loop uvicorn would choose itself (uvloop, installed with the project), not the
    # default one asyncio.run makes: the event loop is most of an API's CPU (ADR 0016)
    heap.settle()
    with asyncio.Runner(loop_factory=servers[0].config.get_loop_factory()) as runner:
        runner.run(run_all())


def _config(asgi: object, settings: Settings, port: int, **more: Any) -> uvicorn.Config:
    """An API's server settings: HTTPS when a certificate and key are configured."""
    return uvicorn.Config(
        asgi,  # type: ignore[arg-type]
        host=settings.host,
        port=port,
        # uvicorn's loggers (its access log too) at ORDERFLOW_LOG_LEVEL, set on the root
        # logger by main(): a fixed "info" wrote an access line per request at WARNING
        log_level=logging.getLogger().getEffectiveLevel(),
        log_config=None,  # uvicorn's loggers propagate to the JSON handler
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
        **more,
    )


def _server(asgi: object, settings: Settings, port: int) -> uvicorn.Server:
    return uvicorn.Server(_config(asgi, settings, port))


@commands.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Load a sample catalogue and orders.")] = False,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where embedded data lives [ORDERFLOW_DATA_DIR].")
    ] = None,
    write_port: Annotated[int | None, typer.Option(help="[ORDERFLOW_WRITE_PORT]")] = None,
    read_port: Annotated[int | None, typer.Option(help="[ORDERFLOW_READ_PORT]")] = None,
) -> None:
    """Everything embedded in one process: SQLite event store and read models, both APIs,
    projections fed straight from the event log."""
    from read_api.app import create_app as create_read_app
    from write_api.app import create_app as create_write_app

    flags = {"data_dir": data_dir, "write_port": write_port, "read_port": read_port}
    settings = Settings().model_copy(
        update={
            "database_url": None,
            "read_database_url": None,  # embedded, whatever is configured
            "clickhouse_url": None,  # reports on chDB in this process
            **{name: value for name, value in flags.items() if value is not None},
        }
    )
    # chDB (the read side's reports and the feed below) opens here: one process per data
    # directory, after any fork; the servers run in this process, in threads
    writes, reads = write_side(settings), read_side(settings, reports=True)
    if demo:
        placed = load_demo(writes.bus)
        console.print(f"demo data: {placed} orders placed" if placed else "demo data: present")
    feed = LogFeed(EventLog(writes.app), reads.runner)
    feed.catch_up()
    feed.start()
    # the reports catch up in their thread while the APIs start (min_position waits)
    reports_feed = LogFeed(EventLog(writes.app), reporting_projector(settings))
    reports_feed.start()
    expiry = expiry_worker(settings, writes, reads)
    expiry.start()
    checkpointer = audit_checkpointer(settings, writes)
    if checkpointer:
        checkpointer.start()
    token = mint_token(settings.token_secret, "dev-admin", Role.ADMIN, 12 * 3600)
    scheme = "https" if settings.tls_certfile else "http"
    console.print(f"write API: {scheme}://{settings.host}:{settings.write_port}  (docs at /docs)")
    console.print(f"read API:  {scheme}://{settings.host}:{settings.read_port}  (docs at /docs)")
    console.print(f"admin token (12 h): {token}", soft_wrap=True)
    try:
        _serve(
            _server(create_write_app(writes), settings, settings.write_port),
            _server(create_read_app(reads), settings, settings.read_port),
        )
    finally:
        expiry.stop()
        if checkpointer:
            checkpointer.stop()
        feed.stop()
        reports_feed.stop()


@commands.command("write-api")
def write_api(
    workers: Annotated[
        int | None, typer.Option(min=1, help="Server processes [ORDERFLOW_WRITE_WORKERS].")
    ] = None,
) -> None:
    """The write API alone, configured from ORDERFLOW_* variables."""
    from write_api.app import create_app

    settings = Settings()
    processes = workers or settings.write_workers
    if processes == 1:
        _serve(_server(create_app(write_side(settings)), settings, settings.write_port))
        return
    # each process builds its own write side (its own pool, cache and appender) from the
    # environment; they share the port, and the event store keeps them consistent
    from uvicorn.supervisors import Multiprocess

    config = _config(
        "write_api.app:from_environment",
        settings,
        settings.write_port,
        factory=True,
        workers=processes,
    )
    sock = config.bind_socket()
    # The workers accept on this socket. asyncio turns Nagle off only for sockets it made
    # itself (proto IPPROTO_TCP), not for these: without TCP_NODELAY, which accepted
    # sockets inherit, every answer waited out a 40 ms delayed ACK (23 requests/s).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # the workers' slots and sockets for routing contended SKUs (ADR 0028), private to
    # this run and this user; the workers learn N and the place from their environment
    with tempfile.TemporaryDirectory(prefix="orderflow-write-") as routing:
        os.environ[DIRECTORY_ENV] = routing
        os.environ["ORDERFLOW_WRITE_WORKERS"] = str(processes)
        Multiprocess(config, sockets=[sock]).run()


@commands.command("read-api")
def read_api() -> None:
    """The read API alone, configured from ORDERFLOW_* variables."""
    from read_api.app import create_app

    settings = Settings()
    _serve(_server(create_app(read_side(settings)), settings, settings.read_port))
