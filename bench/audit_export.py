"""Audit export in bounded memory: peak RSS of `orderflow audit export` at two log sizes.

Fills an embedded event store with real OrderFlow events (orders placed, reserved, paid,
stock reserved), then runs the real CLI in a subprocess to export them, measuring the
child's peak RSS, and compares it with the CLI's own start-up footprint (`orderflow
--help`) measured in the same run. Bounded memory shows as an export whose peak barely
moves when the log grows fourfold. Then re-imports the export into an empty store.

    .venv/bin/python bench/audit_export.py [--events 100000]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import random
import subprocess
import tempfile
import time

from rich.console import Console
from rich.table import Table

from bench.measure.report import json_line
from bench.measure.services import ORDERFLOW_CLI, environment_without_settings
from domain.inventory import InventoryItem
from domain.order import Order, priced_line
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings

EVENTS_PER_ORDER = 4  # order.created, order.reserved, order.paid, inventory.stock_reserved


def fill(data_dir: Path, events: int, seed: int = 1) -> int:
    """Appends about `events` events in batches of 250 orders; returns the head."""
    app = open_event_store(Settings(data_dir=data_dir))
    rnd = random.Random(seed)
    items = [
        InventoryItem(sku=f"SKU-{n:03d}", name=f"item {n}", unit_price_cents=100 + n)
        for n in range(100)
    ]
    for item in items:
        item.receive(1_000_000)
    app.save(*items)
    for _ in range(events // EVENTS_PER_ORDER // 250):
        orders, touched = [], {}
        for _ in range(250):
            item = rnd.choice(items)
            order = Order.place(
                f"c{rnd.randint(1, 500)}", [priced_line(item.sku, 1, item.unit_price_cents)]
            )
            item.reserve(order.id, 1)
            order.mark_reserved()
            order.pay(order.total_cents, "bench")
            orders.append(order)
            touched[item.id] = item
        app.save(*orders, *touched.values())
    head = app.recorder.max_notification_id() or 0
    app.close()
    return head


def peak_rss_mb(args: list[str], data_dir: Path) -> tuple[float, float]:
    """Runs the CLI in a fresh process; returns (peak RSS in MB, seconds)."""
    env = environment_without_settings()
    env["ORDERFLOW_DATA_DIR"] = str(data_dir)
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
        "time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, ORDERFLOW_CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]) / 1024, float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    events = parser.parse_args().events
    console = Console()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        startup_mb, _ = peak_rss_mb(["--help"], base / "none")
        for label, size in (("quarter", events // 4), ("full", events)):
            data = base / label
            started = time.perf_counter()
            head = fill(data, size)
            filled_s = time.perf_counter() - started
            export = base / f"{label}.jsonl"
            rss, seconds = peak_rss_mb(["audit", "export", "--output", str(export)], data)
            lines = sum(1 for _ in export.open())
            results[label] = {
                "events": lines,
                "head": head,
                "fill_s": round(filled_s, 1),
                "export_peak_rss_mb": round(rss, 1),
                "export_s": round(seconds, 2),
                "export_events_per_s": round(lines / seconds),
            }
        full = results["full"]
        import_rss, import_s = peak_rss_mb(
            ["audit", "import", str(base / "full.jsonl")], base / "replay"
        )
        full.update(
            import_peak_rss_mb=round(import_rss, 1),
            import_s=round(import_s, 2),
            import_events_per_s=round(full["events"] / import_s),
        )
        verify_rss, verify_s = peak_rss_mb(["audit", "verify"], base / "replay")
        full.update(verify_s=round(verify_s, 2), verify_peak_rss_mb=round(verify_rss, 1))

    table = Table(title="audit export: peak RSS of the CLI process (same run)")
    for column in ("run", "events", "export s", "events/s", "peak RSS MB", "over start-up MB"):
        table.add_column(column, justify="right")
    table.add_row("orderflow --help", "-", "-", "-", f"{startup_mb:.1f}", "0")
    for label, r in results.items():
        table.add_row(
            f"export ({label})",
            str(r["events"]),
            str(r["export_s"]),
            str(r["export_events_per_s"]),
            str(r["export_peak_rss_mb"]),
            f"{r['export_peak_rss_mb'] - startup_mb:.1f}",
        )
    console.print(table)
    growth = full["export_peak_rss_mb"] - results["quarter"]["export_peak_rss_mb"]
    console.print(
        f"4x the events -> peak RSS +{growth:.1f} MB; import into an empty store: "
        f"{full['import_events_per_s']} events/s; verify of the replay: "
        f"{full['verify_s']} s"
    )
    print(
        json_line({"bench": "audit_export", "startup_peak_rss_mb": round(startup_mb, 1), **results})
    )


if __name__ == "__main__":
    main()
