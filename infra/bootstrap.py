"""The one place that wires settings to adapters. Everything else receives what it needs."""

from __future__ import annotations

from dataclasses import dataclass

from commands.bus import CommandBus, RetryPolicy
from infra.audit import Audit
from infra.event_store import OrderFlowApplication, open_event_store
from infra.read_store import PostgresReadStore, ReadStore, SQLiteReadStore
from infra.settings import Settings
from infra.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from projections.catalog import ALL
from projections.runner import ProjectionRunner


@dataclass
class WriteSide:
    settings: Settings
    app: OrderFlowApplication
    bus: CommandBus

    def close(self) -> None:
        self.app.close()


def write_side(settings: Settings) -> WriteSide:
    app = open_event_store(settings)
    bus = CommandBus(
        unit_of_work=lambda: EventStoreUnitOfWork(app),
        idempotency=EventStoreIdempotency(app),
        retry=RetryPolicy(attempts=settings.command_attempts),
    )
    return WriteSide(settings, app, bus)


@dataclass
class ReadSide:
    settings: Settings
    store: ReadStore
    runner: ProjectionRunner
    events: OrderFlowApplication  # read only: the audit endpoints

    @property
    def audit(self) -> Audit:
        return Audit(self.events)

    def close(self) -> None:
        self.store.close()
        self.events.close()


def read_store(settings: Settings) -> ReadStore:
    url = settings.read_models_url
    if url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return SQLiteReadStore(settings.read_sqlite_path)
    return PostgresReadStore(url, settings.postgres_pool_size)


def read_side(settings: Settings) -> ReadSide:
    store = read_store(settings)
    runner = ProjectionRunner(store, ALL)
    runner.setup()
    return ReadSide(settings, store, runner, open_event_store(settings))
