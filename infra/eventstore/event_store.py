"""The event store: the eventsourcing library's application on PostgreSQL or SQLite.

Three additions to the library, through its own extension points: event metadata
(correlation, causation, actor) stored inside each event's state under `_meta`;
personal fields sealed with the subject's data key in the mapper, for events and
snapshots alike (infra/eventstore/sealing.py); and recorders that save an idempotent answer in the
same transaction as the events."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import Any
from urllib.parse import unquote, urlsplit
from uuid import UUID

from eventsourcing.application import (
    Application,
    ProcessingEvent,
    ProjectorFunction,
    project_aggregate,
)
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import Environment, EnvType, get_topic, strtobool

from commands.trace_context import span

# Importing the aggregates also registers their event topics (see domain/topics.py).
from domain.inventory import InventoryItem
from domain.order import Order
from infra import pool_health
from infra.eventstore.decided_snapshots import snapshot_decided
from infra.eventstore.personal_keys import Forgetting, PersonalDataKeys
from infra.eventstore.postgres_factory import CONNECTION_PARAMETERS, OrderFlowPostgresFactory
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.eventstore.sealing import Keys, open_sealed, personal_data_of, seal
from infra.eventstore.sqlite_recorder import SQLiteRecorder
from infra.observability.tracing import tracer
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


def _personal_state(event: object) -> tuple[dict[str, Any], str | None] | None:
    """The dict holding the event's personal fields (a snapshot keeps them in `state`)."""
    declared = personal_data_of(type(event))
    if declared is None:
        return None
    if declared.subject in vars(event):
        return vars(event), None
    state = vars(event).get("state")
    return (state, "state") if isinstance(state, dict) and declared.subject in state else None


class MetadataMapper(Mapper[UUID]):
    """Also seals personal fields on the way in and opens them on the way out, so the
    domain only ever sees clear text (or None, once the key is destroyed)."""

    keys: Keys | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        found = _personal_state(domain_event)
        if found is not None:
            assert self.keys is not None, "personal data is never stored without a key"
            declared = personal_data_of(type(domain_event))
            assert declared is not None
            state, inner = found
            sealed = seal(state, declared, self.keys)
            copied = object.__new__(type(domain_event))
            outer = dict(vars(domain_event))
            outer.update({inner: sealed} if inner else sealed)
            object.__setattr__(copied, "__dict__", outer)
            domain_event = copied
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event = super().to_domain_event(stored_event)
        _decoded.count += 1
        vars(event).pop(META_KEY, None)  # metadata is for envelopes, not for aggregates
        found = _personal_state(event)
        if found is not None:
            assert self.keys is not None, "sealed fields are opened or redacted, never passed on"
            declared = personal_data_of(type(event))
            assert declared is not None
            state, _ = found
            state.update(open_sealed(state, declared, self.keys)[0])
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
        with span(tracer, "append", attributes={"events": len(domain_events)}):
            return super().put(domain_events, **kwargs)


class OrderFlowApplication(Application[UUID]):
    name = "OrderFlow"  # the events table is orderflow_events (stored_events on SQLite)

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        datastore = getattr(self.recorder, "datastore")  # noqa: B009 (both recorders have one)
        self.personal_keys = PersonalDataKeys(datastore)
        if strtobool(self.env.get("CREATE_TABLE", "yes")):  # the library's default too
            self.personal_keys.create_tables()
        assert isinstance(self.mapper, MetadataMapper)
        self.mapper.keys = self.personal_keys

    def save_decided(
        self, events: Sequence[Any], aggregates: Sequence[Any], **kwargs: Any
    ) -> list[Recording[UUID]]:
        """`save` for what is known to be collected already: the events, in the order to
        append them, and their aggregates (for snapshots and the cache). The library's
        `save` asks every object whether it is an event or an aggregate, through runtime
        protocol checks that were a twentieth of a group commit's CPU (ADR 0016)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events.extend(events)
        processing.aggregates.update((a.id, a) for a in aggregates)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        snapshot_decided(self, processing.events, processing.aggregates)
        self._notify(recordings)
        return recordings

    def notifications_after(self, position: int, limit: int) -> Sequence[Notification]:
        """Up to `limit` notifications after `position`, in order: on the appending
        thread's held connection where the recorder has one (the log follower's read)."""
        recorder = self.orderflow_recorder
        page: Sequence[Notification]
        if isinstance(recorder, PostgresRecorder):
            page = recorder.notifications_after(position, limit)  # the library's retry: Any
        else:
            page = recorder.select_notifications(position, limit, inclusive_of_start=False)
        return page

    def appending_on_one_connection(self) -> AbstractContextManager[None]:
        """For the thread that appends batch after batch (the group appender's): its
        appends keep one connection while the block runs, where the recorder can."""
        recorder = self.orderflow_recorder
        if isinstance(recorder, PostgresRecorder):
            return recorder.appending_on_one_connection()
        return nullcontext()

    def forget_personal_data(self, subject: str, actor: str) -> Forgetting:
        """Destroys the subject's data key (infra/eventstore/personal_keys.py) and drops this
        process's cached aggregates, which hold fields decrypted while the key existed:
        the next load reads them sealed, so redacted."""
        forgetting = self.personal_keys.forget(subject, actor)
        cache = getattr(self.repository, "cache", None)
        if cache is not None:
            for aggregate_id in list(cache.cache):
                with suppress(KeyError):  # evicted meanwhile by another thread
                    cache.get(aggregate_id, evict=True)
        return forgetting

    def __del__(self) -> None:
        # The library closes an application when it is collected. Collection may happen in
        # one of psycopg_pool's own worker threads, and closing the pool there would make
        # that thread join itself (RuntimeError): close from a thread of its own instead.
        if threading.current_thread().name.startswith("pool-"):
            threading.Thread(target=super().__del__, daemon=True).start()
        else:
            super().__del__()

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
        "PERSISTENCE_MODULE": get_topic(OrderFlowPostgresFactory),
        CONNECTION_PARAMETERS: url.query,
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


RECONNECT_TIMEOUT_S = 2.0


def _recovering(app: OrderFlowApplication) -> OrderFlowApplication:
    """psycopg_pool re-adds broken connections with a backoff that doubles for as long as
    the database is away (minutes, by default), so it could come back long before the pool
    tried again (its tries are 1, 2, 4... s apart). Giving up after 2 s instead lets the
    next request start afresh, with a connection attempt at once.
    The library does not pass this setting on; the pool exposes it."""
    datastore = getattr(app.recorder, "datastore", None)
    pool = getattr(datastore, "pool", None)
    if pool is not None:
        pool.reconnect_timeout = RECONNECT_TIMEOUT_S
        pool_health.install(pool)  # its check on checkout (POSTGRES_PRE_PING), for all
    return app
