"""The write path's report: the results table, the ratios, notes, warnings, the JSON line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from bench.measure.report import BUSY_WARNING_CORES, print_report, ratio_table
from bench.write.pgbench import PGBENCH_CLIENTS
from bench.write.results import Plan, Result
from bench.write.workloads import HOT_SKUS, HTTP_CLIENTS, SKU_COUNT

WORKERS = (1, 2)
PAIRED_CLIENTS = dict(zip(HTTP_CLIENTS, PGBENCH_CLIENTS, strict=True))


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    results: dict[str, dict[int, Result]]  # workload -> clients -> result
    postgres: dict[str, str]
    busy_before: float  # cores busy with other work just before the run
    elapsed_s: float

    def ratios(self) -> dict[str, float]:
        """Unsuffixed: 1 server process each; `,2w`: 2 each."""
        pgbench = self.results["pgbench"]
        figures = {}
        for workers in WORKERS:
            suffix = "" if workers == 1 else f",{workers}w"
            orderflow = self.results[f"orderflow/{workers}w"]
            bare = self.results[f"bare_fastapi/{workers}w"]
            hot = self.results[f"hot/{workers}w"]
            for clients, pg_clients in PAIRED_CLIENTS.items():
                of, raw, db = orderflow[clients].rate, bare[clients].rate, pgbench[pg_clients].rate
                figures[f"orderflow/bare@{clients}{suffix}"] = of / raw
                figures[f"orderflow@{clients}/pgbench@{pg_clients}{suffix}"] = of / db
                figures[f"bare@{clients}/pgbench@{pg_clients}{suffix}"] = raw / db
            top, one = max(HTTP_CLIENTS), min(HTTP_CLIENTS)
            figures[f"hot/spread@{top}{suffix}"] = hot[top].rate / orderflow[top].rate
            figures[f"hot/spread_p99@{top}{suffix}"] = hot[top].p99_ms / orderflow[top].p99_ms
            figures[f"orderflow@{top}/@{one}{suffix}"] = orderflow[top].rate / orderflow[one].rate
        return {name: round(value, 4) for name, value in figures.items()}


def results_table(outcome: Outcome) -> Table:
    table = Table(title="Write path: throughput and latency (same PostgreSQL, same run)")
    for column in ("workload", "clients", "ops/s", "p50 ms", "p99 ms", "errors", "cpu ms/op"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for column in ("cpu: loadgen", "server", "postgres", "other"):
        table.add_column(column, justify="right")
    for name, by_clients in outcome.results.items():
        for result in by_clients.values():
            figures = result.summary()
            table.add_row(
                name,
                str(result.clients),
                f"{result.rate:,.0f}",
                f"{figures['p50_ms']:.2f}",
                f"{figures['p99_ms']:.2f}",
                str(result.errors),
                f"{result.server_cpu_ms_per_order:.2f}",
                *(f"{value:.2f}" for value in vars(result.cpu).values()),
            )
    return table


def notes(outcome: Outcome) -> list[str]:
    pg, plan = outcome.postgres, outcome.plan
    return [
        f"PostgreSQL {pg['server_version']}: fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, "
        f"full_page_writes={pg['full_page_writes']} for all three workloads"
        + ("" if plan.durable else " (the test harness's settings; --durable for on)"),
        f"{os.cpu_count()} CPUs shared by all; cpu columns: average cores busy while measuring,"
        " in the load generator (pgbench itself for pgbench), the HTTP server process,"
        " PostgreSQL, and other work on the machine"
        f" ({outcome.busy_before:.2f} cores of it just before the run)",
        "HTTP: /1w and /2w: 1 or 2 uvicorn server processes per app sharing the port"
        " (SO_REUSEPORT; access log off; each settles its heap as OrderFlow's servers do),"
        " closed-loop raw HTTP/1.1 clients on asyncio in the"
        " bench process, one keep-alive connection each; cpu ms/op: server CPU per accepted op",
        "OrderFlow orders: customer token, Idempotency-Key, 1-3 lines over"
        f" {SKU_COUNT} SKUs (fresh catalogue per concurrency); hot: 1 line on one of"
        f" {HOT_SKUS} SKUs seeded with {plan.hot_events:,} events each (and a snapshot)",
        "events_read_median_at_most (JSON): the histogram bucket holding the median number"
        " of stored events and snapshots a command read",
        "pgbench: -M prepared over TCP, one INSERT per transaction; the ratios pair "
        + " and ".join(f"HTTP@{h} with pgbench@{p}" for h, p in PAIRED_CLIENTS.items()),
        f"{plan.seconds:g} s measured after {plan.warmup_s:g} s of warm-up each;"
        f" the whole run took {outcome.elapsed_s:.0f} s",
    ]


def warnings(outcome: Outcome) -> list[str]:
    found = [
        f"{name}@{result.clients}: {result.errors} errors, the first: {result.first_error}"
        for name, by_clients in outcome.results.items()
        for result in by_clients.values()
        if result.errors
    ]
    busy = [
        f"{name}@{result.clients}"
        for name, by_clients in outcome.results.items()
        for result in by_clients.values()
        if result.cpu.other > BUSY_WARNING_CORES
    ]
    if outcome.busy_before > BUSY_WARNING_CORES:
        busy.insert(0, "before the run")
    if busy:
        found.append(f"other work was using the CPUs ({', '.join(busy)}): figures are skewed")
    return found


def figures(outcome: Outcome) -> dict[str, Any]:
    """Everything, for the JSON line."""
    return {
        "bench": "write_path",
        "seconds": outcome.plan.seconds,
        "warmup_s": outcome.plan.warmup_s,
        "cpus": os.cpu_count(),
        "busy_before_cores": round(outcome.busy_before, 2),
        "postgres": outcome.postgres,
        "results": {
            name: {str(c): r.summary() for c, r in by_clients.items()}
            for name, by_clients in outcome.results.items()
        },
        "ratios": outcome.ratios(),
        "elapsed_s": round(outcome.elapsed_s, 1),
    }


def report(outcome: Outcome) -> None:
    print_report(
        [results_table(outcome), ratio_table(outcome.ratios())],
        notes(outcome),
        warnings(outcome),
        figures(outcome),
    )
