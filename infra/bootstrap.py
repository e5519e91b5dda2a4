"""The one place that wires settings to adapters. Everything else receives what it needs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass

from commands.bus import CommandBus, OneAtATime, RetryPolicy
from infra.audit.queries import Audit
from infra.eventstore.contention import Contention
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.eventstore.group_commit import GroupAppender
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from infra.readstore.store import PostgresReadStore, SQLiteReadStore
from infra.settings import Settings
from projections.ports import ReadStore
from projections.projector import Projector
from projections.registry import REGISTRY, SQL_BY_NAME, SQL_READ_MODELS
from projections.reporting import CLICKHOUSE
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

    idempotency = EventStoreIdempotency(app)
    appender = None
    if settings.group_commit:
        alone = OneAtATime(unit_of_work, idempotency)
        appender = GroupAppender(
            app,
            alone,
            idempotency,
            settings.group_commit_max_batch,
            contention=Contention(settings.write_routing_after),
        )
    bus = CommandBus(
        unit_of_work=unit_of_work,
        idempotency=idempotency,
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

    @property
    def projectors(self) -> list[Projector]:
        return [self.runner, *([self.reporting] if self.reporting is not None else [])]

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
    runner = SqlProjector(store, SQL_READ_MODELS)
    runner.setup()
    wanted = settings.clickhouse_url is not None if reports is None else reports
    reporting = reporting_projector(settings) if wanted else None
    return ReadSide(settings, store, runner, open_event_store(settings), reporting)


def reporting_projector(settings: Settings) -> ReportingProjector:
    """The reporting projection on ClickHouse (ORDERFLOW_CLICKHOUSE_URL) or chDB under the
    data dir, its tables and views created. Each call opens its own client."""
    from infra.clickhouse.client import reporting_client  # clickhouse-connect: only when used

    runner = ReportingProjector(reporting_client(settings))
    runner.setup()
    return runner


class NotConfigured(RuntimeError):
    """A read model's store is not configured here; `setting` says what to set."""

    def __init__(self, setting: str, why: str) -> None:
        super().__init__(f"{setting} is not set: {why}")
        self.setting = setting


def check_configured(settings: Settings, store: str, *, shared: bool = False) -> None:
    """NotConfigured unless `store` can be opened here. `shared`: for a process of its own
    (a Kafka projector), which a chDB inside another process cannot be."""
    if store != CLICKHOUSE or settings.clickhouse_url:
        return
    if shared:
        raise NotConfigured(
            "ORDERFLOW_CLICKHOUSE_URL",
            "the reporting projector runs against a ClickHouse server (embedded, "
            "`orderflow dev` projects reports in-process)",
        )
    if not settings.embedded:  # a local chDB in production would never be fed
        raise NotConfigured("ORDERFLOW_CLICKHOUSE_URL", "reports live in ClickHouse")


@contextmanager
def opened_projector(
    settings: Settings, store: str, names: Sequence[str] | None = None, *, shared: bool = False
) -> Iterator[Projector]:
    """The projector of `store`'s read models (`names`; default all of them), set up, and
    closed after: NotConfigured, or StoreUnavailable when the store cannot be opened."""
    check_configured(settings, store, shared=shared)
    if store == CLICKHOUSE:
        with closing(reporting_projector(settings)) as reports:
            yield reports
        return
    read = read_store(settings)
    try:
        chosen = [SQL_BY_NAME[n] for n in names or REGISTRY.in_store(store)]
        projector = SqlProjector(read, chosen)
        projector.setup(claim_set=shared)
        yield projector
    finally:
        read.close()
