"""Write-path benchmark: OrderFlow's place-order against raw baselines, in one run.

On one fresh PostgreSQL server, with the same settings for everything, it measures
  1. POST /orders on OrderFlow's write API over real HTTP, at 1 and 16 concurrent clients,
     served by 1 and by 2 processes, orders spread over a catalogue;
  2. the same with every order on one of 3 hot SKUs whose streams hold 100,000 events each;
  3. a bare FastAPI endpoint doing one INSERT per request, served (by as many processes)
     and loaded the same way;
  4. pgbench doing one single-row INSERT per transaction, at 1 and 8 clients;
then prints throughput, latency, server CPU per order, the median number of stored events
a command read, and the ratios of OrderFlow to each baseline. Not a test.
Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/write_path.py [--seconds N] [--quick] [--durable]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import time
from contextlib import ExitStack

from bench.measure.cpu import busy_cores, postmaster_pid
from bench.measure.services import bench_session, start_postgres
from bench.write.database import create_rows_table, make_durable, server_settings
from bench.write.pgbench import measure_pgbench
from bench.write.report import WORKERS, Outcome, report
from bench.write.results import Plan, Result
from bench.write.workloads import measure_bare, measure_orderflow, seed_hot_skus

SMOKE_HOT_EVENTS = 2_000


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, help="per measurement (default 10, quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument(
        "--durable", action="store_true", help="fsync, synchronous_commit, full_page_writes on"
    )
    # Every step end to end in well under a minute, to check the bench works, not to measure.
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        return Plan(seconds=0.5, warmup_s=0.2, durable=args.durable, hot_events=SMOKE_HOT_EVENTS)
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    return Plan(seconds=seconds, warmup_s=max(1.0, seconds / 5), durable=args.durable)


def run(plan: Plan, work_dir: Path, stack: ExitStack) -> Outcome:
    began = time.monotonic()
    busy_before = busy_cores()
    pg = start_postgres(work_dir, stack)
    if plan.durable:
        make_durable(pg)
    baseline_dsn = pg.create_database("baseline")
    create_rows_table(baseline_dsn)
    orderflow_dsn = pg.create_database("orderflow")
    hot = seed_hot_skus(orderflow_dsn, plan.hot_events)
    postmaster = postmaster_pid(pg.dsn())
    results: dict[str, dict[int, Result]] = {}
    for workers in WORKERS:
        results |= measure_orderflow(orderflow_dsn, plan, postmaster, workers, hot)
        results[f"bare_fastapi/{workers}w"] = measure_bare(baseline_dsn, plan, postmaster, workers)
    results["pgbench"] = measure_pgbench(pg, "baseline", work_dir, plan)
    return Outcome(plan, results, server_settings(pg), busy_before, time.monotonic() - began)


def main() -> None:
    plan = parse_plan()
    with bench_session() as (work_dir, stack):
        outcome = run(plan, work_dir, stack)
    report(outcome)


if __name__ == "__main__":
    main()
