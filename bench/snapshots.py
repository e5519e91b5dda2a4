"""Snapshot benchmark: loading a busy SKU's Inventory aggregate with and without snapshots.

One SKU gets a long history (default 50,000 events: stock received, then reservations that
are committed or released, a few hundred left open), then, on one store, in one run:
  1. raw: the aggregate's rows selected and JSON-decoded, nothing applied (the floor of a
     replay: what reading the events alone costs);
  2. replay: the aggregate loaded from its first event (no snapshots);
  3. snapshot at the head, and 4. a snapshot 50 events behind (what an interval of 100
     leaves on average): the aggregate loaded from the snapshot plus the events after it;
  5. state as of the middle of the history, without and with a snapshot before it;
  6. placing an order on that SKU through the command bus, without and with snapshots.
Not a test. Run it from the repository root:

    .venv/bin/python bench/snapshots.py [--events 50000] [--repeat 3] [--postgres]

`--postgres` runs it on a PostgreSQL server started with the test harness instead of the
embedded SQLite file.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from rich.console import Console
from rich.table import Table

from bench.measure.report import json_line
from bench.measure.services import start_postgres
from commands.ports import CommandContext
from domain.inventory import InventoryItem
from infra.audit.queries import Audit
from infra.bootstrap import write_side
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.settings import Settings
from schemas.commands import OrderLineRequest, PlaceOrder, RegisterItem
from tests.aggregate_state import public_state

SKU = "BUSY-1"
OPEN_RESERVATIONS = 300
SAVE_EVERY = 1000
SECRET = "bench-secret-of-at-least-32-bytes!"
console = Console(stderr=True)


@dataclass(frozen=True)
class Figure:
    name: str
    seconds: list[float]
    events_applied: int

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def build_history(app: OrderFlowApplication, events: int) -> int:
    """Registers the SKU and gives it `events` events in all; returns its version."""
    item = InventoryItem(sku=SKU, name="Busy", unit_price_cents=100)
    item.receive(1_000_000)
    held: list[UUID] = []
    n = 0
    while item.version < events:
        if len(held) < OPEN_RESERVATIONS or item.version + 2 > events:
            order_id = uuid4()
            item.reserve(order_id, 1 + n % 3)
            held.append(order_id)
        else:
            done = held.pop(0)
            if n % 4:
                item.commit(done)
            else:
                item.release(done, "cancelled")
        n += 1
        if len(item.pending_events) >= SAVE_EVERY:
            app.save(item)
    app.save(item)
    return item.version


def timed(repeat: int, run: Callable[[], object]) -> list[float]:
    run()  # warm: connections, caches, imports
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        found.append(time.perf_counter() - start)
    return found


def raw_rows(app: OrderFlowApplication, aggregate_id: UUID) -> int:
    stored = app.recorder.select_events(aggregate_id)
    decode = app.mapper.transcoder.decode
    return sum(1 for row in stored if decode(row.state))


@contextmanager
def store(postgres: bool) -> Iterator[Settings]:
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        if not postgres:
            yield Settings(data_dir=Path(scratch), jwt_secret=SECRET)
            return
        url = start_postgres(Path(scratch), stack).create_database("bench_snapshots")
        yield Settings(data_dir=Path(scratch), database_url=url, jwt_secret=SECRET)


def measure(settings: Settings, events: int, repeat: int) -> tuple[list[Figure], dict[str, Any]]:
    plain = open_event_store(settings)
    started = time.perf_counter()
    head = build_history(plain, events)
    built_s = time.perf_counter() - started
    item_id = InventoryItem.create_id(SKU)
    middle = head // 2

    snapshotting = open_event_store(settings, snapshots=True)
    assert snapshotting.snapshots is not None
    behind = 50
    started = time.perf_counter()
    assert snapshotting.snapshot(item_id, head - behind)
    take_s = time.perf_counter() - started
    snapshotting.snapshot(item_id, middle - behind)
    snapshot_bytes = len(
        snapshotting.mapper.to_stored_event(
            next(iter(snapshotting.snapshots.get(item_id, desc=True, limit=1)))
        ).state
    )
    replayed = public_state(plain.repository.get(item_id))
    assert public_state(snapshotting.repository.get(item_id)) == replayed

    figures = [
        Figure("raw: select + decode", timed(repeat, lambda: raw_rows(plain, item_id)), 0),
        Figure("replay from event 1", timed(repeat, lambda: plain.repository.get(item_id)), head),
        Figure(
            f"snapshot {behind} behind",
            timed(repeat, lambda: snapshotting.repository.get(item_id)),
            behind,
        ),
    ]
    as_of = Audit(plain), Audit(snapshotting)
    figures += [
        Figure(
            f"state at v{middle}, replay",
            timed(repeat, lambda: as_of[0].state(InventoryItem, item_id, version=middle)),
            middle,
        ),
        Figure(
            f"state at v{middle}, snapshot",
            timed(repeat, lambda: as_of[1].state(InventoryItem, item_id, version=middle)),
            behind,
        ),
    ]
    assert snapshotting.snapshot(item_id)  # at the head
    figures.append(
        Figure("snapshot at head", timed(repeat, lambda: snapshotting.repository.get(item_id)), 0)
    )
    figures += place_orders(settings, repeat)
    plain.close()
    snapshotting.close()
    extra = {
        "events": head,
        "history_built_s": round(built_s, 2),
        "snapshot_take_ms": round(take_s * 1000, 1),
        "snapshot_bytes": snapshot_bytes,
        "open_reservations": OPEN_RESERVATIONS,
    }
    return figures, extra


def place_orders(settings: Settings, repeat: int) -> list[Figure]:
    """POST /orders' work without HTTP: the bus loads the SKU, reserves, appends."""
    found = []
    context = CommandContext(correlation_id="bench", actor="bench")
    for label, interval in (("place order, no snapshots", None), ("place order, every 100", 100)):
        chosen = settings.model_copy(update={"snapshot_interval_inventory": interval})
        side = write_side(chosen)
        if interval is None:  # a second SKU the orders also touch, registered once
            side.bus.handle(
                RegisterItem(sku="OTHER", name="o", unit_price_cents=1, on_hand=10**6), context
            )
        command = PlaceOrder(
            customer_id="bench",
            lines=(
                OrderLineRequest(sku=SKU, quantity=1),
                OrderLineRequest(sku="OTHER", quantity=1),
            ),
        )
        seconds = timed(repeat, lambda: side.bus.handle(command, context))  # noqa: B023
        found.append(Figure(label, seconds, -1))
        side.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with store(args.postgres) as settings:
        console.print(
            f"building {args.events} events on {'PostgreSQL' if args.postgres else 'SQLite'}"
        )
        figures, extra = measure(settings, args.events, args.repeat)
    replay = next(f for f in figures if f.name.startswith("replay")).median_ms
    table = Table("load", "events applied", "median ms", "min ms", "vs replay")
    for f in figures:
        applied = "-" if f.events_applied < 0 else str(f.events_applied)
        table.add_row(
            f.name,
            applied,
            f"{f.median_ms:.2f}",
            f"{min(f.seconds) * 1000:.2f}",
            f"{f.median_ms / replay:.4f}",
        )
    Console().print(table)
    load_after = os.getloadavg()[0]
    if max(load_before, load_after) > (os.cpu_count() or 1) * 0.5:
        console.print(
            f"[yellow]the machine was busy (load {load_before:.1f} -> {load_after:.1f} on "
            f"{os.cpu_count()} cores): absolute figures are skewed, ratios less so[/yellow]"
        )
    result = {
        "store": "postgres" if args.postgres else "sqlite",
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "repeat": args.repeat,
        **extra,
        "median_ms": {f.name: round(f.median_ms, 3) for f in figures},
    }
    print(json_line(result))


if __name__ == "__main__":
    main()
