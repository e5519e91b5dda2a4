"""The `orderflow` command line."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
import uvicorn
from rich.progress import Progress

from commands.demo import load_demo
from domain.order import Order
from infra.audit.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    check_signature,
    from_json,
    key_id,
    public_key,
    public_key_text,
)
from infra.audit.checkpoint import to_json as checkpoint_json
from infra.audit.checkpoints import (
    ChainBroken,
    CheckpointStore,
    NoCheckpointKey,
    NothingToCheckpoint,
    signing_key,
    verifying_key,
)
from infra.audit.checkpoints import take as take_checkpoint
from infra.audit.export import ExportItem, ExportWriter, UnreadableExport, read_export
from infra.audit.queries import Audit, ExportRefused, StoreNotEmpty
from infra.bootstrap import read_side, reporting_runner, write_side
from infra.cli import background
from infra.cli.background import audit_checkpointer, expiry_worker
from infra.cli.console import bar_columns, console
from infra.cli.dead_letters import dead_letters_cli
from infra.cli.privacy import privacy_cli
from infra.cli.projections import projections
from infra.cli.tables import JsonOption, emit
from infra.cli.times import moment
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.eventstore.snapshots import Snapshots
from infra.http.auth import mint_token
from infra.settings import Settings, SettingsError, load_settings
from projections.feed import LogFeed
from schemas.auth import Role

app = typer.Typer(help="OrderFlow: event-sourced orders and inventory.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
auth = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
schemas_cli = typer.Typer(help="Event JSON Schemas.", no_args_is_help=True)
audit_cli = typer.Typer(
    help="Auditors' tools: history, past states, export, import, verify, checkpoints.",
    no_args_is_help=True,
)
snapshots_cli = typer.Typer(help="Aggregate snapshots: take, status, clear.", no_args_is_help=True)


def _serve(*servers: uvicorn.Server) -> None:
    async def run_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(run_all())


def _server(asgi: object, settings: Settings, port: int) -> uvicorn.Server:
    """An API's server: HTTPS when a certificate and key are configured."""
    config = uvicorn.Config(
        asgi,  # type: ignore[arg-type]
        host=settings.host,
        port=port,
        log_level="info",
        log_config=None,  # uvicorn's loggers propagate to the JSON handler
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
    return uvicorn.Server(config)


@app.command()
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
    reports_feed = LogFeed(EventLog(writes.app), reporting_runner(settings))
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


@app.command("write-api")
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

    config = uvicorn.Config(
        "write_api.app:from_environment",
        factory=True,
        workers=processes,
        host=settings.host,
        port=settings.write_port,
        log_level="info",
        log_config=None,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
    sock = config.bind_socket()
    # The workers accept on this socket. asyncio turns Nagle off only for sockets it made
    # itself (proto IPPROTO_TCP), not for these: without TCP_NODELAY, which accepted
    # sockets inherit, every answer waited out a 40 ms delayed ACK (23 requests/s).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()


@app.command("read-api")
def read_api() -> None:
    """The read API alone, configured from ORDERFLOW_* variables."""
    from read_api.app import create_app

    settings = Settings()
    _serve(_server(create_app(read_side(settings)), settings, settings.read_port))


@schemas_cli.command("export")
def schemas_export() -> None:
    """Rewrite the committed JSON Schemas (schemas/json/) from the pydantic models; refused
    when the code breaks a committed version (declare a new version with an upcaster)."""
    from infra.eventstore.envelopes import declared_upcasters
    from schemas.export import IncompatibleSchemas, export

    try:
        written = export(upcasters=declared_upcasters())
    except IncompatibleSchemas as refused:
        for problem in refused.problems:
            console.print(f"[red]{problem}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    for path in written:
        console.print(f"wrote {path}")


def _snapshots() -> Snapshots:
    return Snapshots(open_event_store(Settings(), snapshots=True))


@snapshots_cli.command("take")
def snapshots_take(
    sku: Annotated[list[str] | None, typer.Option(help="An inventory item (repeatable).")] = None,
    order: Annotated[list[UUID] | None, typer.Option(help="An order (repeatable).")] = None,
    all_skus: Annotated[bool, typer.Option("--all-skus", help="Every inventory item.")] = False,
) -> None:
    """Snapshot aggregates at their current version now."""
    from domain.inventory import InventoryItem

    store = _snapshots()
    skus = list(store.skus()) if all_skus else list(sku or [])
    targets = [(f"SKU {s}", InventoryItem.create_id(s)) for s in skus]
    targets += [(f"order {o}", o) for o in order or []]
    if not targets:
        raise typer.BadParameter("name --sku, --order or --all-skus")
    for label, aggregate_id in targets:
        try:
            taken = store.take(aggregate_id)
        except LookupError:
            raise typer.BadParameter(f"no {label}") from None
        console.print(f"{label}: " + (f"snapshot at version {taken}" if taken else "up to date"))


@snapshots_cli.command("status")
def snapshots_status(as_json: JsonOption = False) -> None:
    """Per aggregate with snapshots: how many, the newest one's version and the aggregate's."""
    settings = Settings()
    statuses = _snapshots().status()
    columns = ("aggregate", "type", "snapshots", "latest snapshot", "version", "behind")
    rows = [
        (str(s.aggregate_id), s.aggregate_type, s.snapshots, s.latest, s.head, s.behind)
        for s in statuses
    ]
    emit(columns, rows, as_json=as_json)
    if as_json:
        return
    intervals = settings.snapshot_intervals
    console.print(
        f"{sum(s.snapshots for s in statuses)} snapshots of {len(statuses)} aggregates; "
        + (", ".join(f"{k} every {n} events" for k, n in intervals.items()) or "no interval set")
    )


@snapshots_cli.command("clear")
def snapshots_clear() -> None:
    """Drop every snapshot (they only save time): after a change to how events apply."""
    console.print(f"dropped {_snapshots().clear()} snapshots")


def _audit() -> Audit:
    return Audit(open_event_store(Settings()))


@audit_cli.command("history")
def audit_history(order_id: Annotated[UUID, typer.Argument(help="The order.")]) -> None:
    """The order's events in version order, one JSON envelope per line."""
    for envelope in _audit().history(order_id):
        print(envelope.model_dump_json())


@audit_cli.command("state")
def audit_state(
    order_id: Annotated[UUID, typer.Argument(help="The order.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 time.")] = None,
    version: Annotated[int | None, typer.Option(help="A version instead of a time.")] = None,
) -> None:
    """The order as it was, rebuilt from the event store."""
    if as_of is not None and version is not None:
        raise typer.BadParameter("give --as-of or --version, not both")
    log = _audit()
    order = log.state(Order, order_id, moment(as_of), version)
    print(
        json.dumps(
            {
                "order_id": str(order.id),
                "customer_id": order.customer_id,
                "status": order.status,
                "currency": order.currency,
                "total_cents": order.total_cents,
                "lines": order.lines,
                "payment_ref": order.payment_ref,
                "refund_due": order.refund_due,
                "version": order.version,
                "shipping_address": order.shipping_address,
                "redacted": log.redacted(order_id),
            }
        )
    )


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@audit_cli.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="Recorded at or after (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Recorded before (RFC 3339).")] = None,
    format_: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(help="A file (default: stdout).")] = None,
) -> None:
    """Stream any range of the log, each event with its link hash, ending with the head;
    memory stays bounded by one page. A complete export starts with the signed checkpoints."""
    log = _audit()
    head = log.head()
    stream = log.exported(moment(since), moment(until))
    with output.open("w", newline="") if output else nullcontext(sys.stdout) as out:
        writer = ExportWriter(out, format_)
        if since is None and until is None:
            for carried in CheckpointStore(Settings().checkpoint_dir).files(up_to=head):
                writer.carry(carried)
        if output is None:
            for event in stream:
                writer.write(event)
            writer.finish()
            return
        with Progress(*bar_columns("export"), console=console) as bar:
            task = bar.add_task("export", total=max(log.head(), 1))
            for event in stream:
                writer.write(event)
                bar.update(task, completed=event.position)
            bar.update(task, completed=max(log.head(), 1))
        writer.finish()


@audit_cli.command("import")
def audit_import(source: Annotated[Path, typer.Argument(help="A complete export.")]) -> None:
    """Check the whole file's chain, then load it into an EMPTY event store keeping its
    positions and links; a file whose chain breaks is refused (exit 1), nothing written."""

    def read() -> Iterator[ExportItem]:
        with source.open(newline="") as lines:
            yield from read_export(lines)

    configured = Settings().audit_public_key
    try:
        written = _audit().import_export(read, public_key(configured) if configured else None)
    except (ExportRefused, UnreadableExport, StoreNotEmpty) as refused:
        console.print(f"[red]{refused}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"imported {written} events")


def _checkpoint_file(path: Path) -> Checkpoint:
    try:
        checkpoint = from_json(path.read_bytes())
        check_signature(checkpoint, verifying_key(Settings()))
    except (OSError, InvalidCheckpoint, NoCheckpointKey) as bad:
        print(json.dumps({"ok": False, "checkpoint": str(path), "reason": str(bad)}))
        raise typer.Exit(1) from None
    return checkpoint


@audit_cli.command("verify")
def audit_verify(
    after: Annotated[int, typer.Option(help="Resume after a position verified before.")] = 0,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A signed checkpoint the store must still reach (from the start)."),
    ] = None,
) -> None:
    """Walk the tamper-evident chain; exit 1 at the first break, or when the store no
    longer reaches the checkpoint's position with its hash."""
    if checkpoint is not None and after:
        raise typer.BadParameter("a checkpoint is checked from the start: drop --after")
    anchor = _checkpoint_file(checkpoint) if checkpoint else None
    log = _audit()
    with Progress(*bar_columns("verify"), console=console) as bar:
        task = bar.add_task("verify", total=max(log.head(), 1))
        result = log.verify(
            after,
            progress=lambda s: bar.update(task, completed=s.last_position),
            checkpoint=anchor,
        )
    print(
        json.dumps(
            {
                "ok": result.ok,
                "checked": result.checked,
                "first_bad_position": result.first_bad_position,
                "reason": result.reason,
                "last_position": result.last_position,
                "checkpoint": result.checkpoint,
            }
        )
    )
    if not result.ok:
        raise typer.Exit(1)


@audit_cli.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option(help="Also write it here (default: stdout).")
    ] = None,
) -> None:
    """Verify the chain and sign its head (position, hash, time) with the Ed25519 key; kept
    in the checkpoint directory. Exit 1 when the chain is broken: nothing is signed."""
    settings = Settings()
    try:
        taken = take_checkpoint(
            _audit(),
            signing_key(settings),
            CheckpointStore(settings.checkpoint_dir),
            datetime.now(UTC),
        )
    except (ChainBroken, NothingToCheckpoint, NoCheckpointKey) as refused:
        console.print(f"[red]{refused}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    if output is None:
        print(checkpoint_json(taken))
    else:
        output.write_text(checkpoint_json(taken) + "\n")
    console.print(f"checkpoint {taken.id}: position {taken.position} in {settings.checkpoint_dir}")


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """The checkpoints' public key (base64) for verifiers: ORDERFLOW_AUDIT_PUBLIC_KEY."""
    try:
        public = verifying_key(Settings())
    except NoCheckpointKey as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(1) from None
    print(public_key_text(public))
    console.print(f"key id {key_id(public)}")


@db.command("init")
def db_init() -> None:
    """Create (or bring up to date) the event store's and the read models' tables."""
    settings = Settings()
    open_event_store(settings).close()
    read_side(settings).close()
    where = settings.data_dir if settings.embedded else "PostgreSQL"
    console.print(f"event store and read models ready in {where}")


@auth.command("token")
def auth_token(
    sub: Annotated[str, typer.Option(help="Subject: the customer id for customers.")],
    role: Annotated[Role, typer.Option(help="customer, operator, auditor or admin.")],
    ttl: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
) -> None:
    """Mint a bearer token with the configured secret (for development and tests)."""
    settings = Settings()
    if settings.identity_provider:
        console.print("tokens come from the identity provider (ORDERFLOW_JWT_JWKS_*)")
        raise typer.Exit(2)
    print(mint_token(settings.token_secret, sub, role, ttl or settings.jwt_ttl_seconds))


app.add_typer(background.commands)
app.add_typer(db, name="db")
app.add_typer(auth, name="auth")
app.add_typer(dead_letters_cli, name="dead-letters")
app.add_typer(audit_cli, name="audit")
app.add_typer(projections, name="projections")
app.add_typer(schemas_cli, name="schemas")
app.add_typer(snapshots_cli, name="snapshots")
app.add_typer(privacy_cli, name="privacy")


def main() -> None:
    from infra.observability.logging import configure_logging, protect_settings, service_for
    from infra.observability.tracing import configure_tracing

    configure_logging(
        service_for(sys.argv),
        os.environ.get("ORDERFLOW_LOG_LEVEL", "INFO"),
        log_format=os.environ.get("ORDERFLOW_LOG_FORMAT", "auto").lower(),
    )
    try:
        settings = load_settings()
    except SettingsError as bad:
        for line in bad.lines:
            print(f"orderflow: invalid setting {line}", file=sys.stderr)
        raise SystemExit(2) from None
    protect_settings(settings)
    configure_tracing(settings, service_for(sys.argv))
    app()
