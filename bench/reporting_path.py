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
import heapq
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx2
from rich.console import Console
from rich.table import Table

from infra.bootstrap import read_side
from infra.clickhouse.client import connect_chdb
from infra.http.auth import mint_token
from infra.settings import Settings
from projections.reporting_projector import ReportingProjector
from projections.reporting_tables import ORDER_EVENTS, SALES_LINES
from read_api.app import create_app
from schemas.auth import Role
from schemas.envelope import Envelope
from tests.live_server import serving

DEFAULT_FACTS = 1_000_000
QUICK_FACTS = 100_000
BATCH = 1000
SEED = 20_261_123
SKUS = [f"SKU-{n:04d}" for n in range(500)]
PRICES = {sku: random.Random(sku).randint(199, 49_900) for sku in SKUS}
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365
REQUESTS = 25  # per endpoint and range
console = Console(width=110)
status = Console(stderr=True, highlight=False)


def busy_cores(seconds: float = 1.0) -> float:
    def busy() -> float:
        ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return (sum(ticks) - ticks[3] - ticks[4]) / 100  # USER_HZ

    before = busy()
    time.sleep(seconds)
    return (busy() - before) / seconds


class Traffic:
    """Orders arriving over a year, each moving on hours or days later; stock events in
    between. Envelopes come out in time order with increasing positions, every 500th
    position skipped (an append that rolled back), each naming its predecessor."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.position = 0
        self.order_facts = 0
        self.later: list[tuple[datetime, int, uuid.UUID, str, dict[str, Any]]] = []
        self.versions: dict[uuid.UUID, int] = {}
        self.totals: dict[uuid.UUID, int] = {}
        self.placed_every = timedelta(seconds=DAYS * 86_400 / 300_000)
        self.clock = START
        self.tiebreak = 0

    def _envelope(
        self, kind: str, aggregate: uuid.UUID, at: datetime, data: dict[str, Any]
    ) -> Envelope:
        previous = self.position
        self.position += 2 if self.rng.random() < 0.002 else 1
        version = self.versions.get(aggregate, 0) + 1
        self.versions[aggregate] = version
        if kind.startswith("order."):
            self.order_facts += 1
        return Envelope.model_construct(
            event_id=uuid.uuid5(aggregate, str(version)),
            type=kind,
            aggregate_type="order" if kind.startswith("order.") else "inventory",
            aggregate_id=aggregate,
            version=version,
            position=self.position,
            previous_position=previous,
            occurred_at=at,
            schema_version=1,
            correlation_id="bench",
            causation_id=None,
            actor="bench",
            data=data,
        )

    def _later(self, at: datetime, order: uuid.UUID, kind: str, data: dict[str, Any]) -> None:
        self.tiebreak += 1
        heapq.heappush(self.later, (at, self.tiebreak, order, kind, data))

    def _place(self) -> Iterator[Envelope]:
        order = uuid.UUID(int=self.rng.getrandbits(128))
        lines = [
            {"sku": sku, "quantity": self.rng.randint(1, 4), "unit_price_cents": PRICES[sku]}
            for sku in self.rng.sample(SKUS, self.rng.randint(1, 4))
        ]
        total = sum(line["quantity"] * line["unit_price_cents"] for line in lines)
        customer = f"customer-{self.rng.randint(1, 50_000)}"
        yield self._envelope(
            "order.created",
            order,
            self.clock,
            {"customer_id": customer, "lines": lines, "currency": "EUR", "total_cents": total},
        )
        yield self._envelope("order.reserved", order, self.clock, {})
        hours = timedelta(hours=self.rng.uniform(0.1, 48))
        fate = self.rng.random()
        if fate < 0.9:
            paid_at = self.clock + hours
            self._later(paid_at, order, "order.paid", {"amount_cents": total, "payment_ref": "b"})
            if fate < 0.05:
                self._later(
                    paid_at + hours, order, "order.cancelled", {"reason": "r", "refund_due": True}
                )
            else:
                shipped = paid_at + hours
                self._later(
                    shipped, order, "order.shipped", {"carrier": "DHL", "tracking_number": "T"}
                )
                self._later(shipped + 2 * hours, order, "order.delivered", {})
        else:
            self._later(
                self.clock + hours, order, "order.cancelled", {"reason": "r", "refund_due": False}
            )

    def batches(self, facts: int, size: int) -> Iterator[list[Envelope]]:
        batch: list[Envelope] = []
        stock = uuid.uuid4()
        while self.order_facts < facts:
            self.clock += self.placed_every
            while self.later and self.later[0][0] <= self.clock:
                at, _, order, kind, data = heapq.heappop(self.later)
                batch.append(self._envelope(kind, order, at, data))
            batch.extend(self._place())
            if self.rng.random() < 0.05:
                batch.append(
                    self._envelope("inventory.stock_received", stock, self.clock, {"quantity": 50})
                )
            if len(batch) >= size:
                yield batch[:size]
                batch = batch[size:]
        if batch:
            yield batch


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--facts", type=int, default=DEFAULT_FACTS, help="order_events rows")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FACTS:,} fact rows")
    args = parser.parse_args()
    facts = QUICK_FACTS if args.quick else args.facts
    busy_before = busy_cores()
    if busy_before > 0.25:
        status.print(f"[yellow]warning: {busy_before:.2f} cores busy before the run[/]")

    with tempfile.TemporaryDirectory(prefix="orderflow-reporting-bench-") as tmp:
        runner = ReportingProjector(connect_chdb(Path(tmp) / "chdb", "bench"))
        runner.setup()
        status.print(f"loading {facts:,} order facts through the reporting runner…")
        loaded = load(runner, facts)
        counted = runner.client.command("SELECT count() FROM order_events FINAL")
        sales = runner.client.command("SELECT count() FROM sales_lines FINAL")

        settings = Settings(data_dir=Path(tmp), database_url=None, jwt_secret="b" * 32)
        reads = read_side(settings, reports=False)
        reads.reporting = ReportingProjector(connect_chdb(Path(tmp) / "chdb", "bench"))
        token = mint_token(settings.token_secret, "bench", Role.OPERATOR, 3600)
        first, last = runner.client.query("SELECT min(day), max(day) FROM sales_lines").result_rows[
            0
        ]
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
            fresh = latencies(url, {"Authorization": f"Bearer {token}"}, ranges)
            for table in ("order_events", "sales_lines"):
                runner.client.command(f"OPTIMIZE TABLE {table} FINAL")
            merged = latencies(url, {"Authorization": f"Bearer {token}"}, ranges)
        reads.close()
        runner.close()

    rate = loaded["events"] / loaded["apply_s"]
    raw_rate = loaded["events"] / loaded["raw_s"]
    summary = Table(title=f"reporting path: {counted:,} order_events rows, {sales:,} sales_lines")
    for column in ("measure", "value"):
        summary.add_column(column)
    summary.add_row("events applied", f"{loaded['events']:,} (position {loaded['position']:,})")
    summary.add_row("events/s into ClickHouse (runner.apply)", f"{rate:,.0f}")
    summary.add_row("raw baseline, events/s (bare inserts)", f"{raw_rate:,.0f}")
    summary.add_row("orderflow / raw", f"{rate / raw_rate:.2f}")
    summary.add_row("wall time of the load (incl. generating)", f"{loaded['wall_s']:.1f} s")
    console.print(summary)
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
    for key, figures in fresh.items():
        timing.add_row(
            key,
            str(figures["items"]),
            f"{figures['p50_ms']}",
            f"{figures['p95_ms']}",
            f"{merged[key]['p50_ms']}",
            f"{merged[key]['p95_ms']}",
        )
    console.print(timing)
    print(
        json.dumps(
            {
                "facts": counted,
                "sales_lines": sales,
                "events": loaded["events"],
                "events_per_s": round(rate),
                "raw_events_per_s": round(raw_rate),
                "parts_before_merge": parts,
                "latency_fresh": fresh,
                "latency_merged": merged,
                "busy_before_cores": round(busy_before, 2),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
