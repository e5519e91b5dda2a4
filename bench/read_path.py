"""Read-path benchmark: OrderFlow's `GET /orders/{id}` against a bare read, in one run.

On one fresh PostgreSQL server it places orders through the write side, projects them
into the read models (the in-process feed), then measures over real HTTP, at 1 and 16
concurrent clients, each served by one process:
  1. `GET /orders/{id}` on OrderFlow's read API (operator token; the order row, its lines
     and the position the answer reflects);
  2. a bare FastAPI endpoint reading one row of the same `orders` table by its key;
then prints throughput, latency, server CPU per read and the ratios of OrderFlow to the
bare read. Not a test. Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/read_path.py [--seconds N] [--quick] [--orders N]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import random
import time
from typing import Any

from rich.table import Table

from bench.measure.cpu import busy_cores, postmaster_pid
from bench.measure.report import busy_before_warning, percentile, print_report, ratio_table
from bench.measure.services import bench_session, start_postgres
from bench.read.servers import BARE, ORDERFLOW
from bench.write.http_load import Call, MakeCall, load
from bench.write.results import Plan, Result
from bench.write.servers import JWT_SECRET, running
from commands.ports import CommandContext
from commands.results import OrderFacts
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.settings import Settings
from projections.feed import LogFeed
from schemas.auth import Role
from schemas.commands import OrderLineRequest, PlaceOrder, RegisterItem

CLIENTS = (1, 16)
SKUS = 50
WORKLOADS = {"orderflow_get": ORDERFLOW, "bare_get": BARE}


def parse() -> tuple[Plan, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, help="per measurement (default 10, quick 3)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument("--orders", type=int, default=2_000, help="orders to read (default 2000)")
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    return Plan(seconds=seconds, warmup_s=max(1.0, seconds / 5), durable=False), args.orders


def placed_orders(settings: Settings, count: int) -> list[str]:
    """Orders placed through the bus and projected into the read models; their ids."""
    side = write_side(settings)
    context = CommandContext(correlation_id="bench", actor="bench")
    try:
        for n in range(SKUS):
            item = RegisterItem(sku=f"R-{n:03d}", name="r", unit_price_cents=100, on_hand=10**6)
            side.bus.handle(item, context)
        ids = []
        for n in range(count):
            line = OrderLineRequest(sku=f"R-{n % SKUS:03d}", quantity=1)
            placed = side.bus.handle(PlaceOrder(customer_id=f"c{n}", lines=(line,)), context)
            assert isinstance(placed.result, OrderFacts)
            ids.append(str(placed.result.order_id))
        reads = read_side(settings)
        try:
            LogFeed(EventLog(side.app), reads.runner).catch_up()
        finally:
            reads.close()
        return ids
    finally:
        side.close()


def get_calls(prefix: str, ids: list[str], headers: dict[str, str]) -> MakeCall:
    def call(_: int) -> Call:
        return Call(f"{prefix}/{random.choice(ids)}", b"", headers, "GET")

    return call


def measure(dsn: str, plan: Plan, ids: list[str], postmaster: int) -> dict[str, dict[int, Result]]:
    token = mint_token(JWT_SECRET, "bench", Role.OPERATOR, 3600)
    calls = {
        "orderflow_get": get_calls("/orders", ids, {"Authorization": f"Bearer {token}"}),
        "bare_get": get_calls("/rows", ids, {}),
    }
    results: dict[str, dict[int, Result]] = {}
    for name, app in WORKLOADS.items():
        with running(app, dsn) as server:
            results[name] = {
                c: asyncio.run(load(server, calls[name], c, plan, postmaster)) for c in CLIENTS
            }
    return results


def results_table(results: dict[str, dict[int, Result]]) -> Table:
    table = Table(title="Read path: throughput and latency (same PostgreSQL, same run)")
    for column in ("workload", "clients", "reads/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for column in ("cpu ms/read", "cpu: loadgen", "server", "postgres"):
        table.add_column(column, justify="right")
    for name, by_clients in results.items():
        for clients, r in by_clients.items():
            ordered = sorted(r.latencies_ms)
            table.add_row(
                name,
                str(clients),
                f"{r.rate:,.0f}",
                f"{percentile(ordered, 0.5):.2f}",
                f"{r.p99_ms:.2f}",
                str(r.errors),
                f"{r.server_cpu_ms_per_order:.2f}",
                f"{r.cpu.loadgen:.2f}",
                f"{r.cpu.server:.2f}",
                f"{r.cpu.postgres:.2f}",
            )
    return table


def main() -> None:
    plan, orders = parse()
    began = time.monotonic()
    busy_before = busy_cores()
    with bench_session() as (work_dir, stack):
        pg = start_postgres(work_dir, stack)
        dsn = pg.create_database("orderflow")
        ids = placed_orders(Settings(database_url=dsn, jwt_secret=JWT_SECRET), orders)
        results = measure(dsn, plan, ids, postmaster_pid(dsn))
    ratios = {
        f"orderflow/bare@{c}": results["orderflow_get"][c].rate / results["bare_get"][c].rate
        for c in CLIENTS
    }
    errors = [
        f"{n}@{c}: {r.first_error}" for n, rs in results.items() for c, r in rs.items() if r.errors
    ]
    figures: dict[str, Any] = {
        "bench": "read_path",
        "seconds": plan.seconds,
        "orders": orders,
        "busy_before_cores": round(busy_before, 2),
        "results": {n: {str(c): r.summary() for c, r in rs.items()} for n, rs in results.items()},
        "ratios": {name: round(value, 4) for name, value in ratios.items()},
        "elapsed_s": round(time.monotonic() - began, 1),
    }
    notes = [
        f"{orders} orders over {SKUS} SKUs, each read picked at random; one server process per"
        " app (access log off), closed-loop raw HTTP/1.1 clients in the bench process, one"
        " keep-alive connection each; cpu ms/read: server CPU per successful read",
        "orderflow_get: JWT check, the position the answer reflects, the order row and its"
        " lines (three round trips); bare_get: one SELECT of the order row by its key",
        f"{plan.seconds:g} s measured after {plan.warmup_s:g} s of warm-up each; the whole run"
        f" took {figures['elapsed_s']:g} s",
    ]
    print_report(
        [results_table(results), ratio_table(figures["ratios"])],
        notes,
        [*busy_before_warning(busy_before), *errors],
        figures,
    )


if __name__ == "__main__":
    main()
