"""Reporting-path benchmark: events into ClickHouse (chDB), then both report endpoints.

In one run, on a fresh chDB directory, it
  1. streams a year of synthetic order traffic (orders placed, paid, shipped, delivered,
     cancelled; stock events between them; positions with a hole now and then) through
     OrderFlow's reporting runner in batches of 1000, as the Kafka projector and the
     embedded feed deliver them, until `order_events` holds the asked number of fact rows
     (default 1M), and reports events/s counting only the time spent in `apply`;
  2. after each batch, inserts the same fact and sales rows into bare copies of the tables
     with plain `client.insert` (no lookups, no progress, no skipping): the raw baseline;
  3. serves the real read API over HTTP (uvicorn, loopback) and times
     `GET /reports/daily-sales` and `GET /reports/top-skus` over every day loaded, the
     last 30 and the last 7, right after the load (unmerged parts) and after
     `OPTIMIZE … FINAL`.
Not a test. Run it from the repository root:

    .venv/bin/python bench/reporting_path.py [--facts N] [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from typing import Any

import httpx2
from rich.table import Table

from bench.measure.cpu import busy_cores
from bench.measure.report import BUSY_WARNING_CORES, print_report, status
from bench.reporting_traffic import Traffic
from infra.bootstrap import read_side
from infra.clickhouse.client import connect_chdb
from infra.http.auth import mint_token
from infra.settings import Settings
from projections.reporting_projector import ReportingProjector
from projections.reporting_tables import ORDER_EVENTS, SALES_LINES
from read_api.app import create_app
from schemas.auth import Role
from tests.live_server import serving

DEFAULT_FACTS = 1_000_000
QUICK_FACTS = 100_000
BATCH = 1000
SEED = 20_261_123
REQUESTS = 25  # per endpoint and range


def load(runner: ReportingProjector, facts: int) -> dict[str, Any]:
    """Applies the traffic; after each batch, inserts the same rows into bare copies of the
    tables (the baseline), so both see the same database at the same size."""
    client = runner.client
    copies = {"raw_events": ORDER_EVENTS, "raw_sales": SALES_LINES}
    for name, table in copies.items():
        client.command(table.create(name))
    applying = raw = 0.0
    events = 0
    started = time.perf_counter()
    for n, batch in enumerate(Traffic(SEED).batches(facts, BATCH)):
        built = runner.rows(batch)  # the baseline's rows, built outside both timings
        t0 = time.perf_counter()
        runner.apply(batch)
        t1 = time.perf_counter()
        client.insert("raw_events", built.order_events, column_names=ORDER_EVENTS.insert_columns)
        if built.sales_lines:
            client.insert("raw_sales", built.sales_lines, column_names=SALES_LINES.insert_columns)
        raw += time.perf_counter() - t1
        applying += t1 - t0
        events += len(batch)
        if n % 50 == 0:
            status.print(f"  {events:>9,} events  {events / applying:>8,.0f}/s", end="\r")
    status.print()
    for name in copies:
        client.command(f"DROP TABLE {name}")
    return {
        "events": events,
        "apply_s": applying,
        "raw_s": raw,
        "wall_s": time.perf_counter() - started,
        "position": runner.position(),
    }


def latencies(
    url: str, headers: dict[str, str], ranges: dict[str, tuple[date, date]]
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with httpx2.Client(base_url=url, headers=headers, timeout=60) as http:
        for path in ("/reports/daily-sales", "/reports/top-skus"):
            for label, (first, last) in ranges.items():
                params = {"from": first.isoformat(), "to": last.isoformat()}
                http.get(path, params=params).raise_for_status()  # warm
                times = []
                for _ in range(REQUESTS):
                    t0 = time.perf_counter()
                    answer = http.get(path, params=params)
                    times.append((time.perf_counter() - t0) * 1000)
                    answer.raise_for_status()
                items = len(answer.json()["items"])
                times.sort()
                found[f"{path} {label}"] = {
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                    "items": items,
                }
    return found


def time_endpoints(work_dir: Path, runner: ReportingProjector) -> dict[str, Any]:
    """The report endpoints on the real read API over loopback HTTP, on the parts the load
    left, then after every part is merged."""
    settings = Settings(data_dir=work_dir, database_url=None, jwt_secret="b" * 32)
    reads = read_side(settings, reports=False)
    reads.reporting = ReportingProjector(connect_chdb(work_dir / "chdb", "bench"))
    token = mint_token(settings.token_secret, "bench", Role.OPERATOR, 3600)
    headers = {"Authorization": f"Bearer {token}"}
    first, last = runner.client.query("SELECT min(day), max(day) FROM sales_lines").result_rows[0]
    ranges = {
        f"all {(last - first).days + 1} days": (first, last),
        "last 30 days": (last - timedelta(days=29), last),
        "last 7 days": (last - timedelta(days=6), last),
    }
    parts = runner.client.command(
        "SELECT count() FROM system.parts WHERE active AND database = 'bench' "
        "AND table IN ('order_events', 'sales_lines')"
    )
    with serving(create_app(reads)) as url:
        status.print(f"timing the endpoints ({parts} active parts)…")
        fresh = latencies(url, headers, ranges)
        for table in ("order_events", "sales_lines"):
            runner.client.command(f"OPTIMIZE TABLE {table} FINAL")
        merged = latencies(url, headers, ranges)
    reads.close()
    return {"parts_before_merge": parts, "latency_fresh": fresh, "latency_merged": merged}


def report(loaded: dict[str, Any], counts: dict[str, Any], timed: dict[str, Any]) -> None:
    rate = loaded["events"] / loaded["apply_s"]
    raw_rate = loaded["events"] / loaded["raw_s"]
    summary = Table(
        title=f"reporting path: {counts['facts']:,} order_events rows,"
        f" {counts['sales_lines']:,} sales_lines"
    )
    for column in ("measure", "value"):
        summary.add_column(column)
    summary.add_row("events applied", f"{loaded['events']:,} (position {loaded['position']:,})")
    summary.add_row("events/s into ClickHouse (runner.apply)", f"{rate:,.0f}")
    summary.add_row("raw baseline, events/s (bare inserts)", f"{raw_rate:,.0f}")
    summary.add_row("orderflow / raw", f"{rate / raw_rate:.2f}")
    summary.add_row("wall time of the load (incl. generating)", f"{loaded['wall_s']:.1f} s")
    timing = Table(title="report endpoints over HTTP (ms)")
    for column in (
        "endpoint, range",
        "items",
        "p50 fresh",
        "p95 fresh",
        "p50 merged",
        "p95 merged",
    ):
        timing.add_column(column)
    fresh, merged = timed["latency_fresh"], timed["latency_merged"]
    for key, figures in fresh.items():
        timing.add_row(
            key,
            str(figures["items"]),
            f"{figures['p50_ms']}",
            f"{figures['p95_ms']}",
            f"{merged[key]['p50_ms']}",
            f"{merged[key]['p95_ms']}",
        )
    figures = {
        **counts,
        "events": loaded["events"],
        "events_per_s": round(rate),
        "raw_events_per_s": round(raw_rate),
        **timed,
        "busy_before_cores": round(loaded["busy_before"], 2),
    }
    print_report([summary, timing], [], [], figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--facts", type=int, default=DEFAULT_FACTS, help="order_events rows")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FACTS:,} fact rows")
    args = parser.parse_args()
    facts = QUICK_FACTS if args.quick else args.facts
    busy_before = busy_cores()
    if busy_before > BUSY_WARNING_CORES:
        status.print(f"[yellow]warning: {busy_before:.2f} cores busy before the run[/]")

    with tempfile.TemporaryDirectory(prefix="orderflow-reporting-bench-") as tmp:
        runner = ReportingProjector(connect_chdb(Path(tmp) / "chdb", "bench"))
        runner.setup()
        status.print(f"loading {facts:,} order facts through the reporting runner…")
        loaded = {**load(runner, facts), "busy_before": busy_before}
        counts = {
            "facts": runner.client.command("SELECT count() FROM order_events FINAL"),
            "sales_lines": runner.client.command("SELECT count() FROM sales_lines FINAL"),
        }
        timed = time_endpoints(Path(tmp), runner)
        runner.close()
    report(loaded, counts, timed)


if __name__ == "__main__":
    main()
