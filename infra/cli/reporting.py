"""The reporting projection's share of the CLI: its Kafka projector, status and rebuild.

Kept apart from `infra/cli/` so the commands there stay one line per projection kind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from infra.bootstrap import reporting_runner
from infra.clickhouse.client import ReportingUnavailable as ReportingUnavailable  # for the CLI
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections import reporting_dead_letters
from projections.catalog import NAMES, REPORTING
from projections.rebuild import Progress, RebuildReport
from projections.reporting_dead_letters import ReportingLetter
from projections.reporting_rebuild import rebuild_reporting
from projections.sql_projector import ReadModelStatus

if TYPE_CHECKING:
    from infra.kafka.consumer import KafkaFeed


class ReportingNotConfigured(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "ORDERFLOW_CLICKHOUSE_URL is not set: the reporting projector runs against a "
            "ClickHouse server (embedded, `orderflow dev` projects reports in-process)"
        )


def default_projections(settings: Settings) -> list[str]:
    """`orderflow project` with no names: every SQL projection, reporting too when a
    ClickHouse server is configured."""
    return [n for n in NAMES if n != REPORTING.name or settings.clickhouse_url]


def reporting_projector(settings: Settings) -> KafkaFeed:
    """A Kafka consumer for the reporting tables, in a consumer group of its own: it
    commits its own offsets and can lag, stop or rebuild without touching the others."""
    from infra.kafka.consumer import KafkaFeed  # kafka-python: only where it is used

    if not settings.clickhouse_url:
        raise ReportingNotConfigured
    group = f"{settings.projector_group}-{REPORTING.name}"
    return KafkaFeed(
        settings.model_copy(update={"projector_group": group}), reporting_runner(settings).apply
    )


def run_all(projectors: Sequence[KafkaFeed]) -> Callable[[], None]:
    """Starts each projector in a thread; returns a function waiting for them all."""
    threads = [
        threading.Thread(target=p.run, name=f"projector-{n}") for n, p in enumerate(projectors)
    ]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # wakes up for signals

    return join


def reporting_letters(settings: Settings, warn: Callable[[str], None]) -> list[ReportingLetter]:
    """The reports' open dead letters (none when reporting is not configured)."""
    if not reporting_configured(settings):
        return []
    try:
        runner = reporting_runner(settings)
    except ReportingUnavailable as locked:
        warn(f"reporting: unavailable ({locked})")
        return []
    try:
        return runner.letters()
    finally:
        runner.close()


def retry_reporting_letters(settings: Settings) -> tuple[int, int]:
    """Applies the reports' open dead letters again: (released, still parked)."""
    if not reporting_configured(settings):
        return 0, 0
    runner = reporting_runner(settings)
    try:
        return reporting_dead_letters.retry(runner)
    finally:
        runner.close()


def reporting_configured(settings: Settings) -> bool:
    """Reports are fed in embedded mode (chDB under the data dir) and, in production, only
    where a ClickHouse server is configured: a local chDB there would never be fed."""
    return settings.embedded or settings.clickhouse_url is not None


def reporting_statuses(settings: Settings, warn: Callable[[str], None]) -> list[ReadModelStatus]:
    try:
        runner = reporting_runner(settings)
    except ReportingUnavailable as locked:
        warn(f"reporting: unavailable ({locked})")
        return []
    try:
        return runner.statuses()
    finally:
        runner.close()


def rebuild_reports(
    settings: Settings, events: EventLog, progress: Progress | None = None
) -> RebuildReport:
    runner = reporting_runner(settings)
    try:
        return rebuild_reporting(runner, events, progress)
    finally:
        runner.close()
