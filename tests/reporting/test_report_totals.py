"""Report totals equal the sums folded straight from the event store: first load, rebuild,
redelivery across interleaved partitions, concurrent appliers, and a crash between the
rows and the progress. Each test runs on chDB and over HTTP (and a real server if set)."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from infra.eventstore.event_log import EventLog
from projections import reporting_queries as queries
from projections.projector import SHADOW
from projections.reporting_progress import PROGRESS
from projections.reporting_projector import ReportingProjector
from projections.reporting_rebuild import rebuild_reporting
from schemas.envelope import Envelope
from tests.reporting.conftest import ClickHouse
from tests.reporting.workload import Expected, assert_reports_match


def everything(log: EventLog) -> list[Envelope]:
    return [e for batch in log.iterate(0) for e in batch]


def test_reports_equal_the_sums_folded_from_the_event_store(
    clickhouse: ClickHouse, log: EventLog, expected: Expected
) -> None:
    runner = clickhouse.runner()
    for batch in log.iterate(0, batch=197):
        runner.apply(batch)
    assert runner.position() == log.head()
    assert_reports_match(runner, expected)
    days = sorted(expected.daily)
    first, last = days[1], days[-2]
    assert queries.daily_sales(runner.client, first, last) == expected.daily_items(first, last)


def test_a_rebuild_swaps_in_equal_reports_and_leaves_no_shadow(
    clickhouse: ClickHouse, log: EventLog, expected: Expected
) -> None:
    runner = clickhouse.runner()
    half = log.head() // 2
    for batch in log.iterate(0, until=half, batch=500):
        runner.apply(batch)
    runner.apply(everything(log)[:40])  # redelivered: nothing changes
    seen: list[tuple[int, int]] = []
    report = rebuild_reporting(runner, log, progress=lambda done, head: seen.append((done, head)))
    assert report.position == runner.position() == log.head()
    assert seen[-1] == (log.head(), log.head())
    assert_reports_match(runner, expected)
    tables = {row[0] for row in runner.client.query("SHOW TABLES").result_rows}
    assert not {t for t in tables if t.endswith(SHADOW)}
    again = rebuild_reporting(runner, log)  # twice in a row: the live tables exist now
    assert again.position == log.head()
    assert_reports_match(runner, expected)


def kafka_like(
    envelopes: Sequence[Envelope], rng: random.Random, partitions: int = 3
) -> Iterator[list[Envelope]]:
    """Batches as a consumer group sees them: per aggregate in order, partitions
    interleaved at random, and now and then a partition replayed from an earlier offset
    (a consumer restarted before it committed)."""
    queues: dict[int, list[Envelope]] = defaultdict(list)
    for e in envelopes:
        queues[hash(e.aggregate_id) % partitions].append(e)
    offsets = dict.fromkeys(queues, 0)
    while any(offsets[p] < len(queues[p]) for p in queues):
        p = rng.choice([p for p in queues if offsets[p] < len(queues[p])])
        size = rng.randint(10, 120)
        start = offsets[p]
        if rng.random() < 0.25:
            start = max(0, start - rng.randint(1, 40))  # redelivery
        batch = queues[p][start : start + size]
        offsets[p] = max(offsets[p], start + len(batch))
        yield batch


def test_redelivered_batches_from_interleaved_partitions_count_once(
    clickhouse: ClickHouse, log: EventLog, expected: Expected
) -> None:
    runner = clickhouse.runner()
    for batch in kafka_like(everything(log), random.Random(7)):
        runner.apply(batch)
    assert runner.position() == log.head()
    assert_reports_match(runner, expected)


def test_two_appliers_at_once_reach_the_head_and_count_once(
    clickhouse: ClickHouse, log: EventLog, expected: Expected
) -> None:
    """A consumer group of two, each with its own partitions and client, applying at the
    same time: the watermark ends at the head whoever finishes last."""
    clickhouse.runner()  # tables
    envelopes = everything(log)
    mine = {0: [e for e in envelopes if e.aggregate_id.int % 2 == 0], 1: []}
    mine[1] = [e for e in envelopes if e.aggregate_id.int % 2 == 1]
    failures: list[BaseException] = []

    def consume(part: int) -> None:
        runner = ReportingProjector(clickhouse.client())
        try:
            for start in range(0, len(mine[part]), 90):
                runner.apply(mine[part][start : start + 90])
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=consume, args=(part,)) for part in mine]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    runner = ReportingProjector(clickhouse.client())
    assert runner.position() == log.head()
    assert_reports_match(runner, expected)


class CrashBeforeProgress(ReportingProjector):
    """Dies once, after its rows are in and before its progress is: a projector killed
    between two inserts of one batch."""

    batches_before_crash = 1

    def _insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        if table == PROGRESS.name and rows and rows[0][0] == "applied":
            self.batches_before_crash -= 1
            if self.batches_before_crash == -1:
                raise ConnectionError("killed")
        super()._insert(table, rows, columns)


def test_a_crash_between_rows_and_progress_is_repaired_by_redelivery(
    clickhouse: ClickHouse, log: EventLog, expected: Expected
) -> None:
    clickhouse.runner()
    batches = list(log.iterate(0, batch=250))
    crashing = CrashBeforeProgress(clickhouse.client())
    crashing.apply(batches[0])
    with pytest.raises(ConnectionError):
        crashing.apply(batches[1])  # rows of batch 1 in, its progress not
    assert crashing.position() == batches[0][-1].position
    restarted = ReportingProjector(clickhouse.client())
    for batch in batches[1:]:  # redelivered from the last committed offset
        restarted.apply(batch)
    assert restarted.position() == log.head()
    assert_reports_match(restarted, expected)
