"""The one place that wires settings to adapters. Everything else receives what it needs."""

from __future__ import annotations

from dataclasses import dataclass

from commands.bus import CommandBus, OneAtATime, RetryPolicy
from infra.audit.queries import Audit
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from infra.readstore.store import PostgresReadStore, SQLiteReadStore
from infra.settings import Settings
from projections.catalog import ALL
from projections.ports import ReadStore
from projections.reporting_projector import ReportingProjector
from projections.sql_projector import SqlProjector


@dataclass
class WriteSide:
    settings: Settings
    app: OrderFlowApplication
    bus: CommandBus
    appender: GroupAppender | None = None

    def close(self) -> None:
        if self.appender is not None:
            self.appender.close()
        self.app.close()


def write_side(settings: Settings) -> WriteSide:
    app = open_event_store(settings)

    def unit_of_work() -> EventStoreUnitOfWork:
        return EventStoreUnitOfWork(app)

    appender = None
    if settings.group_commit:
        appender = GroupAppender(app, OneAtATime(unit_of_work), settings.group_commit_max_batch)
    bus = CommandBus(
        unit_of_work=unit_of_work,
        idempotency=EventStoreIdempotency(app),
        retry=RetryPolicy(attempts=settings.command_attempts),
        appender=appender,
    )
    return WriteSide(settings, app, bus, appender)


@dataclass
class ReadSide:
    settings: Settings
    store: ReadStore
    runner: SqlProjector
    events: OrderFlowApplication  # read only: the audit endpoints
    reporting: ReportingProjector | None = None  # ClickHouse reports, when configured

    @property
    def audit(self) -> Audit:
        return Audit(self.events)

    def close(self) -> None:
        self.store.close()
        self.events.close()
        if self.reporting is not None:
            self.reporting.close()


def read_store(settings: Settings) -> ReadStore:
    url = settings.read_models_url
    if url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return SQLiteReadStore(settings.read_sqlite_path)
    return PostgresReadStore(url, settings.postgres_pool_size)


def read_side(settings: Settings, reports: bool | None = None) -> ReadSide:
    """`reports` (default: when ORDERFLOW_CLICKHOUSE_URL is set) adds the ClickHouse
    reports; embedded, they open chDB, which one process at a time may do."""
    store = read_store(settings)
    runner = SqlProjector(store, ALL)
    runner.setup()
    wanted = settings.clickhouse_url is not None if reports is None else reports
    reporting = reporting_runner(settings) if wanted else None
    return ReadSide(settings, store, runner, open_event_store(settings), reporting)


def reporting_runner(settings: Settings) -> ReportingProjector:
    """The reporting projection on ClickHouse (ORDERFLOW_CLICKHOUSE_URL) or chDB under the
    data dir, its tables and views created. Each call opens its own client."""
    from infra.clickhouse.client import reporting_client  # clickhouse-connect: only when used

    runner = ReportingProjector(reporting_client(settings))
    runner.setup()
    return runner
