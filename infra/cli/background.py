"""The long-running processes besides the APIs: the expiry worker, the relay and the
Kafka projectors, and what they share (a broker required, a clean stop on SIGTERM/SIGINT,
the worker's and the checkpointer's wiring, which `orderflow dev` runs in-process too)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated

import typer

from infra import heap
from infra.audit.checkpoints import Checkpointer, CheckpointStore, NoCheckpointKey, signing_key
from infra.audit.queries import Audit
from infra.bootstrap import NotConfigured, ReadSide, WriteSide, read_side, write_side
from infra.cli import read_models
from infra.cli.console import console
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.eventstore.unit_of_work import EventStoreIdempotency
from infra.observability.metrics import serve_if_configured as serve_metrics
from infra.settings import Settings
from infra.worker import ExpiryWorker
from projections.feed import run_feeds
from projections.registry import UnknownReadModel

commands = typer.Typer()


def _with_kafka(settings: Settings) -> Settings:
    """The relay and projectors cannot work without a broker: say so and stop, at once."""
    if not settings.kafka_bootstrap_servers:
        console.print("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS is not set")
        raise typer.Exit(2)
    return settings


def _stop_on_signals(stop: Callable[[], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop())


def expiry_worker(settings: Settings, writes: WriteSide, reads: ReadSide) -> ExpiryWorker:
    return ExpiryWorker(
        writes.bus,
        reads.store,
        settings.reservation_ttl,
        settings.worker_interval_seconds,
        answers=EventStoreIdempotency(writes.app),
        idempotency_window=settings.idempotency_window,
    )


def audit_checkpointer(settings: Settings, writes: WriteSide) -> Checkpointer | None:
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


@commands.command()
def worker() -> None:
    """Expire reservations unpaid past ORDERFLOW_RESERVATION_TTL, purge idempotent answers
    older than ORDERFLOW_IDEMPOTENCY_WINDOW, and sign an audit checkpoint every
    ORDERFLOW_AUDIT_CHECKPOINT_INTERVAL (0: never); safe to run several."""
    settings = Settings()
    serve_metrics(settings.metrics_port)
    writes = write_side(settings)
    running = expiry_worker(settings, writes, read_side(settings))
    checkpointer = audit_checkpointer(settings, writes)

    def stop() -> None:
        running.stop()
        if checkpointer:
            checkpointer.stop()

    _stop_on_signals(stop)
    heap.settle()
    if checkpointer:
        checkpointer.start()
    running.run()


@commands.command()
def relay() -> None:
    """Publish the event store's log to Kafka (one active relay; others stand by)."""
    from infra.kafka.relay import Relay

    settings = _with_kafka(Settings())
    serve_metrics(settings.metrics_port)
    store = open_event_store(settings)
    running = Relay(settings, EventLog(store))
    _stop_on_signals(running.stop)
    heap.settle()
    running.run()


@commands.command()
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
        heap.settle()
        run_feeds(feeds)()
