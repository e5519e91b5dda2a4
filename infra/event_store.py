"""The event store: the eventsourcing library's application on PostgreSQL or SQLite.

Two additions to the library, through its own extension points: event metadata
(correlation, causation, actor) stored inside each event's state under `_meta`, and
recorders that save an idempotent answer in the same transaction as the events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import Application, ProjectorFunction, project_aggregate
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import Environment, EnvType, get_topic

# Importing the aggregates also registers their event topics (see domain/topics.py).
from domain.inventory import InventoryItem
from domain.order import Order
from infra.recorders import PostgresRecorder, SQLiteRecorder
from infra.settings import Settings

META_KEY = "_meta"
SNAPSHOTTED: dict[str, type[Aggregate]] = {"order": Order, "inventory": InventoryItem}
log = logging.getLogger(__name__)


class _Decoded(threading.local):
    count = 0


_decoded = _Decoded()


def events_decoded() -> int:
    """Stored events (and snapshots) this thread has read so far: what a load cost."""
    return _decoded.count


def with_metadata(
    event: DomainEventProtocol[UUID], metadata: dict[str, str]
) -> DomainEventProtocol[UUID]:
    """A copy of the event whose state also carries the metadata, for the mapper to encode."""
    tagged = object.__new__(type(event))
    object.__setattr__(tagged, "__dict__", {**vars(event), META_KEY: metadata})
    return tagged


class MetadataMapper(Mapper[UUID]):
    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event = super().to_domain_event(stored_event)
        _decoded.count += 1
        vars(event).pop(META_KEY, None)  # metadata is for envelopes, not for aggregates
        return event


class MetadataEventStore(EventStore[UUID]):
    def put(
        self,
        domain_events: Sequence[DomainEventProtocol[UUID]],
        *,
        metadata: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        if metadata:
            domain_events = [with_metadata(e, metadata) for e in domain_events]
        return super().put(domain_events, **kwargs)


class OrderFlowApplication(Application[UUID]):
    name = "OrderFlow"  # the events table is orderflow_events (stored_events on SQLite)

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Only the settings we translated: the library would otherwise also read the
        process environment, where ORDERFLOW_* variables mean something else to it."""
        return Environment(name, dict(env or {}))

    def construct_mapper(self) -> Mapper[UUID]:
        return MetadataMapper(transcoder=self.construct_transcoder())

    def construct_event_store(self) -> EventStore[UUID]:
        return MetadataEventStore(mapper=self.mapper, recorder=self.recorder)

    def take_snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
    ) -> None:
        """What the library calls after a save, at the configured intervals. The events are
        committed by then, so a snapshot that cannot be written is logged, never raised: a
        command that succeeded must not be answered (and retried) as failed."""
        try:
            self.snapshot(aggregate_id, version, projector_func)
        except Exception:
            log.exception("no snapshot of %s at version %s", aggregate_id, version)

    def snapshot(
        self,
        aggregate_id: UUID,
        version: int | None = None,
        projector_func: ProjectorFunction[Any, Any] = project_aggregate,
    ) -> bool:
        """Snapshots the aggregate at `version` (default: its last) now; False when that
        version has one already (the same state: taken by the interval or an operator)."""
        try:
            super().take_snapshot(aggregate_id, version, projector_func)
        except IntegrityError:
            return False
        return True

    @property
    def orderflow_recorder(self) -> PostgresRecorder | SQLiteRecorder:
        assert isinstance(self.recorder, PostgresRecorder | SQLiteRecorder)
        return self.recorder


def library_env(settings: Settings) -> dict[str, str]:
    """Translate our settings into the library's environment keys."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": get_topic(SQLiteRecorder),
        }
    url = urlsplit(settings.database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"ORDERFLOW_DATABASE_URL must be postgresql://…, got {url.scheme!r}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.postgres_pool_size),
        "POSTGRES_LOCK_TIMEOUT": "10",
        # while PostgreSQL is down a call fails within seconds (503), not after the
        # library's 30 s per attempt; a connection broken by a restart is replaced
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_PRE_PING": "y",
        "APPLICATION_RECORDER_TOPIC": get_topic(PostgresRecorder),
    }


def open_event_store(settings: Settings, *, snapshots: bool = False) -> OrderFlowApplication:
    """Connects (creating tables on first use: `orderflow db init` does only this).

    With a snapshot interval set for any aggregate type, aggregates load from their latest
    snapshot and the library snapshots each type every N events; `snapshots=True` opens the
    snapshot store even with none set (what `orderflow snapshots` needs)."""
    env = {**library_env(settings), "CREATE_TABLE": "y", **_cache_env(settings)}
    intervals = {SNAPSHOTTED[kind]: n for kind, n in settings.snapshot_intervals.items()}
    if not intervals and not snapshots:
        return _recovering(OrderFlowApplication(env))
    # The library reads snapshot intervals from the class: one made for these settings.
    snapshotting: type[OrderFlowApplication] = type(
        "SnapshottingOrderFlow",
        (OrderFlowApplication,),
        {"name": OrderFlowApplication.name, "snapshotting_intervals": intervals},
    )
    return _recovering(snapshotting({**env, "IS_SNAPSHOTTING_ENABLED": "y"}))


def _cache_env(settings: Settings) -> dict[str, str]:
    """The library's aggregate cache: a cached aggregate is brought up to date by reading
    only the events after its version (fast-forward), so a load costs what changed since."""
    if settings.aggregate_cache_size == 0:
        return {}
    return {
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }


RECONNECT_TIMEOUT_S = 10.0


def _recovering(app: OrderFlowApplication) -> OrderFlowApplication:
    """psycopg_pool re-adds broken connections with a backoff that doubles for as long as
    the database is away (minutes, by default), so it could come back long before the pool
    tried again. Giving up after a few seconds instead lets the next request start afresh.
    The library does not pass this setting on; the pool exposes it."""
    datastore = getattr(app.recorder, "datastore", None)
    pool = getattr(datastore, "pool", None)
    if pool is not None:
        pool.reconnect_timeout = RECONNECT_TIMEOUT_S
    return app
