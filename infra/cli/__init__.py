"""The `orderflow` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

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
    Checkpointer,
    CheckpointStore,
    NoCheckpointKey,
    NothingToCheckpoint,
    signing_key,
    verifying_key,
)
from infra.audit.checkpoints import take as take_checkpoint
from infra.audit.export import ExportItem, ExportWriter, UnreadableExport, read_export
from infra.audit.queries import Audit, ExportRefused, StoreNotEmpty
from infra.bootstrap import (
    NotConfigured,
    ReadSide,
    WriteSide,
    read_side,
    reporting_projector,
    write_side,
)
from infra.cli import read_models
from infra.cli.privacy import privacy_cli
from infra.cli.tables import JsonOption, emit
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.eventstore.snapshots import Snapshots
from infra.eventstore.unit_of_work import EventStoreIdempotency
from infra.http.auth import mint_token
from infra.observability.metrics import serve_if_configured as serve_metrics
from infra.settings import Settings, SettingsError, load_settings
from infra.worker import ExpiryWorker
from projections import dead_letters
from projections.feed import LogFeed, run_feeds
from projections.projector import Progress as Advance
from projections.registry import REGISTRY, UnknownReadModel
from schemas.auth import Role

app = typer.Typer(help="OrderFlow: event-sourced orders and inventory.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
auth = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
projections = typer.Typer(help="Read models: list, status, rebuild, verify.", no_args_is_help=True)
app.add_typer(db, name="db")
app.add_typer(auth, name="auth")
schemas_cli = typer.Typer(help="Event JSON Schemas.", no_args_is_help=True)
dead_letters_cli = typer.Typer(help="Events projections could not apply.", no_args_is_help=True)
app.add_typer(dead_letters_cli, name="dead-letters")
audit_cli = typer.Typer(
    help="Auditors' tools: history, past states, export, import, verify, checkpoints.",
    no_args_is_help=True,
)
app.add_typer(audit_cli, name="audit")
app.add_typer(projections, name="projections")
app.add_typer(schemas_cli, name="schemas")
snapshots_cli = typer.Typer(help="Aggregate snapshots: take, status, clear.", no_args_is_help=True)
app.add_typer(snapshots_cli, name="snapshots")
app.add_typer(privacy_cli, name="privacy")
console = Console(stderr=True)


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
    reports_feed = LogFeed(EventLog(writes.app), reporting_projector(settings))
    reports_feed.start()
    expiry = _expiry_worker(settings, writes, reads)
    expiry.start()
    checkpointer = _checkpointer(settings, writes)
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


def _with_kafka(settings: Settings) -> Settings:
    """The relay and projectors cannot work without a broker: say so and stop, at once."""
    if not settings.kafka_bootstrap_servers:
        console.print("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS is not set")
        raise typer.Exit(2)
    return settings


def _stop_on_signals(stop: Callable[[], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def _expiry_worker(settings: Settings, writes: WriteSide, reads: ReadSide) -> ExpiryWorker:
    return ExpiryWorker(
        writes.bus,
        reads.store,
        settings.reservation_ttl,
        settings.worker_interval_seconds,
        answers=EventStoreIdempotency(writes.app),
        idempotency_window=settings.idempotency_window,
    )


def _checkpointer(settings: Settings, writes: WriteSide) -> Checkpointer | None:
    """None when turned off (interval 0), or, with a warning, when no key can sign."""
    if not settings.audit_checkpoint_interval:
        return None
    try:
        key = signing_key(settings)
    except NoCheckpointKey as missing:
        logging.getLogger(__name__).warning("no audit checkpoints: %s", missing)
        return None
    store = CheckpointStore(settings.checkpoint_dir)
    return Checkpointer(Audit(writes.app), key, store, settings.audit_checkpoint_interval)


@app.command()
def worker() -> None:
    """Expire reservations unpaid past ORDERFLOW_RESERVATION_TTL, purge idempotent answers
    older than ORDERFLOW_IDEMPOTENCY_WINDOW, and sign an audit checkpoint every
    ORDERFLOW_AUDIT_CHECKPOINT_INTERVAL (0: never); safe to run several."""
    settings = Settings()
    serve_metrics(settings.metrics_port)
    writes = write_side(settings)
    running = _expiry_worker(settings, writes, read_side(settings))
    checkpointer = _checkpointer(settings, writes)

    def stop() -> None:
        running.stop()
        if checkpointer:
            checkpointer.stop()

    _stop_on_signals(stop)
    if checkpointer:
        checkpointer.start()
    running.run()


@app.command()
def relay() -> None:
    """Publish the event store's log to Kafka (one active relay; others stand by)."""
    from infra.kafka.relay import Relay

    settings = _with_kafka(Settings())
    serve_metrics(settings.metrics_port)
    store = open_event_store(settings)
    running = Relay(settings, EventLog(store))
    _stop_on_signals(running.stop)
    running.run()


@app.command()
def project(
    names: Annotated[list[str] | None, typer.Argument(help="Projections (default: all).")] = None,
) -> None:
    """Run projectors: a Kafka consumer group applying events to the read models."""
    settings = _with_kafka(Settings())
    serve_metrics(settings.metrics_port)
    with ExitStack() as opened:
        try:
            feeds = read_models.kafka_feeds(
                settings, names or read_models.default_projections(settings), opened
            )
        except UnknownReadModel as unknown:
            raise typer.BadParameter(f"{unknown.args[0]}; see `projections list`") from unknown
        except NotConfigured as missing:
            raise typer.BadParameter(str(missing)) from missing

        def stop_all() -> None:
            for feed in feeds:
                feed.stop()

        _stop_on_signals(stop_all)
        run_feeds(feeds)()


@projections.command("list")
def projections_list(as_json: JsonOption = False) -> None:
    """The projections and the tables they own."""
    emit(("projection", "tables", "what it holds"), read_models.listing(), as_json=as_json)


@projections.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Each projection's position and its lag behind the event store, in events and time."""
    settings = Settings()
    events = EventLog(open_event_store(settings))
    rows = read_models.status_rows(settings, events, console.print)
    emit(read_models.STATUS_COLUMNS, rows, as_json=as_json)


def _bar_columns(label: str) -> tuple[ProgressColumn, ...]:
    return (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} positions"),
        TimeRemainingColumn(),
    )


def _advance(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    def update(done: int, head: int) -> None:
        bar.update(task, completed=done, total=max(head, 1))

    return update


@contextmanager
def _bar(label: str, head: int) -> Iterator[Advance]:
    with Progress(*_bar_columns(label), console=console) as bar:
        yield _advance(bar, bar.add_task(label, total=max(head, 1)))


@projections.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="The projection to rebuild.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every projection.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Compare with the live tables; swap only if equal.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --check: swap anyway.")] = False,
) -> None:
    """Rebuild from the event store into shadow tables, then swap them in atomically."""
    if (name is None) == (not all_):
        raise typer.BadParameter("name one projection, or pass --all")
    if name is not None and name not in REGISTRY:
        raise typer.BadParameter(f"unknown projection {name!r}; see `orderflow projections list`")
    if check or force:
        _checked(name, swap=True, force=force)
        return
    settings = Settings()
    events = EventLog(open_event_store(settings))
    read_models.rebuild(settings, events, name, _bar, console.print)


@projections.command("verify")
def projections_verify(
    name: Annotated[str | None, typer.Argument(help="The projection to verify.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every read model.")] = False,
) -> None:
    """Fold the log into shadow tables and compare them with the live ones; swap nothing.
    Exit code 1 if they differ."""
    if (name is None) == (not all_):
        raise typer.BadParameter("name one projection, or pass --all")
    _checked(name, swap=False, force=False)


def _checked(name: str | None, *, swap: bool, force: bool) -> None:
    """`verify` (swap=False) and `rebuild --check`, on one projection or all read models."""
    settings = Settings()
    events = EventLog(open_event_store(settings))
    differ = read_models.checked(
        settings, events, name, swap=swap, force=force, bar=_bar, say=console.print
    )
    if differ:
        raise typer.Exit(1)


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


def _moment(text: str | None) -> datetime | None:
    """RFC 3339 (a trailing Z is fine); a time without an offset is taken as UTC."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an RFC 3339 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    order = log.state(Order, order_id, _moment(as_of), version)
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
    stream = log.exported(_moment(since), _moment(until))
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
        with Progress(*_bar_columns("export"), console=console) as bar:
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
    with Progress(*_bar_columns("verify"), console=console) as bar:
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


@dead_letters_cli.command("list")
def dead_letters_list(
    all_: Annotated[bool, typer.Option("--all", help="Include resolved ones.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Events parked because a projection could not apply them (and those held behind)."""
    columns = ("id", "projection", "position", "event", "aggregate", "status", "attempts", "error")
    rows = read_models.letter_rows(Settings(), all_, as_json, console.print)
    emit(columns, rows, as_json=as_json)


@dead_letters_cli.command("show")
def dead_letters_show(letter_id: Annotated[int, typer.Argument(help="The id.")]) -> None:
    """One dead letter with its error and its envelope, as JSON."""
    letter = dead_letters.find(read_side(Settings()).store, letter_id)
    if letter is None:
        raise typer.BadParameter(f"no dead letter {letter_id}")
    print(
        json.dumps(
            {
                "id": letter.id,
                "projection": letter.projection,
                "status": letter.status,
                "attempts": letter.attempts,
                "error": letter.error,
                "envelope": letter.envelope.model_dump(mode="json"),
            },
            indent=2,
        )
    )


@dead_letters_cli.command("retry")
def dead_letters_retry(
    letter_id: Annotated[int | None, typer.Argument(help="Retry this one's aggregate.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every parked event.")] = False,
) -> None:
    """Apply parked events again, per aggregate and in order, once the fault is fixed."""
    if (letter_id is None) == (not all_):
        raise typer.BadParameter("name one dead letter, or pass --all")
    ids = None if all_ else [letter_id or 0]
    released, parked = read_models.retry_letters(Settings(), ids, console.print)
    console.print(f"released {released}, still parked {parked}")
    if parked:
        raise typer.Exit(1)


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
