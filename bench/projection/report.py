"""The projection path's report: the stages table, the ratios, notes, warnings, the JSON line."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from bench.measure.report import busy_before_warning, print_report, ratio_table
from bench.projection.kafka_stages import RAW_PRODUCE_CHUNK, crc32c_implementation
from bench.projection.rebuilds import SCAN_BATCH
from bench.projection.shop import EVENTS_TABLE, SKU_COUNT
from bench.projection.stages import Plan, Stage
from infra.kafka.consumer import MAX_POLL_RECORDS
from projections.registry import SQL_READ_MODELS


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    head: int
    orders: int
    mix: dict[str, int]
    stages: list[Stage]
    checks: dict[str, bool | None]
    busy_before: float
    elapsed_s: float

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def ratios(self) -> dict[str, float]:
        # NaN for a stage with nothing timed: a tiny run's raw consumer gets every record
        # in its first poll, whose records its clock leaves out
        rate = {s.name: s.rate or math.nan for s in self.stages}
        figures = {
            "projector/raw_consume": rate["projector"] / rate["raw_consume"],
            "relay/raw_produce": rate["relay"] / rate["raw_produce"],
            "rebuild_all/raw_scan": rate["rebuild_all"] / rate["raw_scan"],
            **{
                f"rebuild_{p.name}/raw_scan": rate[f"rebuild_{p.name}"] / rate["raw_scan"]
                for p in SQL_READ_MODELS
            },
            "log_read/raw_scan": rate["log_read"] / rate["raw_scan"],
            "verify_all/raw_scan": rate["verify_all"] / rate["raw_scan"],
            "projector_2_processes/projector": rate["projector_2_processes"] / rate["projector"],
            **{
                f"rebuild_{p.name}/log_read": rate[f"rebuild_{p.name}"] / rate["log_read"]
                for p in SQL_READ_MODELS
            },
        }
        return {name: round(value, 4) for name, value in figures.items()}


def stages_table(outcome: Outcome) -> Table:
    table = Table(title=f"Projection path: {outcome.head:,} events (same services, same run)")
    table.add_column("stage")
    table.add_column("what")
    for column in ("events", "seconds", "events/s", "python CPU", "machine CPU"):
        table.add_column(column, justify="right")
    for s in outcome.stages:
        table.add_row(
            s.name,
            s.what,
            f"{s.events:,}",
            f"{s.seconds:.2f}",
            f"{s.rate:,.0f}",
            f"{s.python_cores:.2f}",
            f"{s.machine_cores:.2f}",
        )
    return table


def notes(outcome: Outcome) -> list[str]:
    raw, projector = outcome.stage("raw_consume"), outcome.stage("projector")
    mix = ", ".join(f"{kind} {n:,}" for kind, n in outcome.mix.items())
    return [
        f"{outcome.head:,} events ({outcome.orders:,} orders over {SKU_COUNT} SKUs): {mix}",
        f"Kafka: {len(SQL_READ_MODELS)} projections, 2 topics x 3 partitions, max_poll_records"
        f" {MAX_POLL_RECORDS}; consumer rates run from the first records to the last (group join"
        f" excluded: raw {raw.extra['join_s']:.2f} s, projector"
        f" {projector.extra['join_s']:.2f} s): the raw consumer's clock starts once its first"
        f" poll is parsed, so its rate counts only the {raw.events:,} records after it (of"
        f" {raw.extra['records']:,}); the projector's starts as its first batch is applied;"
        " the raw consumer commits no offsets;"
        f" kafka-python's CRC-32C check runs in {crc32c_implementation()} for both",
        "raw_produce: the relay's records (same topics' partitioning, keys, values, headers),"
        f" encoded ahead {RAW_PRODUCE_CHUNK:,} at a time off the clock, sent by a bare"
        " kafka-python producer: its defaults but acks=all (the relay adds idempotence, 5 ms"
        " linger and 256 KiB batches)",
        "rebuild_all: every projection rebuilt in one pass over the log (rebuild_all, in a"
        " child process, whose fold's helper process takes half the aggregates: peak RSS"
        f" {outcome.stage('rebuild_all').extra['peak_rss_mb']:,} MB, the two added,"
        f" read models {outcome.stage('rebuild_all').extra['read_models_mb']:,} MB on disk)."
        " log_read: the same reads into envelopes, applied to nothing. verify_all: every"
        " projection folded in one pass into shadow tables and compared with the live ones,"
        " swapping nothing (projections verify --all;"
        f" all equal: {outcome.stage('verify_all').extra['all_equal']})",
        "projector_2_processes: two projector processes in one consumer group into fresh"
        " read models, from the first batch either applied to the last, once the group is"
        " formed (both hold partitions: joining and the rebalance are off the clock, as the"
        " one process's join is); applied by each:"
        f" {outcome.stage('projector_2_processes').extra['envelopes_each']}",
        f"raw_scan: SELECT * FROM {EVENTS_TABLE} ORDER BY notification_id, server-side"
        f" cursor, {SCAN_BATCH} rows a fetch",
        f"{os.cpu_count()} CPUs shared by PostgreSQL (harness settings: fsync off), the Kafka"
        " broker and this process; CPU columns are average cores busy over each stage; other"
        f" work used {outcome.busy_before:.2f} cores just before the run",
        f"the whole run took {outcome.elapsed_s:.0f} s",
    ]


def warnings(outcome: Outcome) -> list[str]:
    found = [
        f"check failed: {name} = {value}"
        for name, value in outcome.checks.items()
        if value is False and name != "projector_reached_head"  # said below, with figures
    ]
    projector = outcome.stage("projector")
    if not projector.extra["reached_head"]:
        found.append(
            f"the projector applied {projector.events:,} of {outcome.head:,} events within"
            f" its {outcome.plan.projector_budget_s:g} s budget: its rate covers those only"
            " (--projector-budget for more)"
        )
    if outcome.head < outcome.plan.events:
        found.append(f"only {outcome.head} events, fewer than the {outcome.plan.events} asked")
    return found + busy_before_warning(outcome.busy_before)


def figures(outcome: Outcome) -> dict[str, Any]:
    """Everything, for the JSON line."""
    return {
        "bench": "projection_path",
        "events": outcome.head,
        "target_events": outcome.plan.events,
        "projector_budget_s": outcome.plan.projector_budget_s,
        "orders": outcome.orders,
        "cpus": os.cpu_count(),
        "kafka_crc32c": crc32c_implementation(),
        "busy_before_cores": round(outcome.busy_before, 2),
        "mix": outcome.mix,
        "stages": {s.name: s.summary() for s in outcome.stages},
        "ratios": outcome.ratios(),
        "checks": outcome.checks,
        "elapsed_s": round(outcome.elapsed_s, 1),
    }


def report(outcome: Outcome) -> None:
    print_report(
        [stages_table(outcome), ratio_table(outcome.ratios())],
        notes(outcome),
        warnings(outcome),
        figures(outcome),
    )
