"""Projection-path benchmark: Kafka into the read models, and rebuilds, against raw baselines.

On one fresh PostgreSQL server and one fresh Kafka broker, in one run, it
  1. fills the event store with N real OrderFlow events (aggregates driven directly and
     saved in large batches: HTTP would take longer than everything else together);
  2. relays them all to Kafka once with OrderFlow's relay, and sends the same records
     (keys, values, headers) to topics of their own with a bare kafka-python producer;
  3. consumes the topics with a bare kafka-python consumer that decodes nothing;
  4. runs OrderFlow's Kafka projector into empty read models until every watermark
     reaches the head (or its time budget is spent);
  5. runs two projector processes in one consumer group into fresh read models, to see
     what the second adds;
  6. rebuilds each projection from the event store, then all of them in one pass (in a
     child process, whose peak RSS it reports beside the read models' size), and scans
     the events table with a bare psycopg server-side cursor;
then prints events/s and the ratios of OrderFlow to each baseline. Not a test. Run it from
the repository root (see bench/README.md):

    .venv/bin/python bench/projection_path.py [--events N] [--quick | --full] [--projector-budget S]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import json
import logging
import multiprocessing
import os
import random
import resource
import signal
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg
from eventsourcing.domain import DomainEventProtocol
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.record import util as kafka_record_util
from rich.console import Console
from rich.table import Table

from domain.inventory import InventoryItem
from domain.order import Order, priced_line
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.kafka.topics import all_topics, bootstrap_servers, encode, ensure_topics, topic_for
from infra.readstore.store import PostgresReadStore
from infra.settings import Settings
from projections.ports import ReadStore
from projections.rebuild import rebuild, rebuild_all
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.envelope import Envelope
from tests.harness.kafka import KafkaBroker, ensure_kafka_jars
from tests.harness.postgres import PostgresServer

DEFAULT_EVENTS = 200_000
QUICK_EVENTS = 20_000
FULL_EVENTS = 1_000_000
SEED = 20_240_601
SKU_COUNT = 300
CUSTOMERS = 2_000
ON_HAND = 1_000_000
ORDERS_PER_ROUND = 100
SAVE_BATCH_EVENTS = 5_000
POLL_RECORDS = 1_000  # the projector's max_poll_records, for the raw consumer too
SCAN_BATCH = 2_000  # rebuild reads the log 2000 at a time; the raw scan fetches as many
RAW_PRODUCE_CHUNK = 50_000  # records the raw producer gets ready before its clock runs
STAGE_TIMEOUT_S = 900.0  # a stage that takes longer has hung
PROJECTOR_BUDGET_S = 240.0
PROGRESS_EVERY_S = 30.0
BUSY_WARNING_CORES = 0.25
JWT_SECRET = "bench-secret-of-at-least-32-bytes!"
EVENTS_TABLE = "orderflow_events"

# What happens to an order after it is placed (and its stock reserved), with weights.
LIFECYCLES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("pay", "ship", "deliver"), 80),
    (("fail_payment", "pay", "ship", "deliver"), 5),
    (("cancel",), 8),
    (("pay", "cancel"), 5),
    (("pay", "ship"), 2),
)

console = Console(width=110)  # wide enough for the tables even when piped to a file
status = Console(stderr=True, highlight=False)


# --- CPU accounting ---------------------------------------------------------------------------


def _ticks_to_s(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return _ticks_to_s(sum(ticks) - ticks[3] - ticks[4])  # all but idle and iowait


def busy_cores(seconds: float = 1.0) -> float:
    """How busy the machine is with nothing of ours running: other work skews every figure."""
    before = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - before) / seconds


@dataclass(frozen=True)
class Clock:
    wall: float
    python: float  # CPU of this process, every thread
    machine: float

    @staticmethod
    def read() -> Clock:
        return Clock(time.perf_counter(), time.process_time(), machine_busy_s())


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    events: int  # at least this many
    projector_budget_s: float


@dataclass(frozen=True)
class Stage:
    """One measurement. `seconds` is the rate's window; `wall_s` and the CPU figures cover
    the whole stage, including start-up such as joining a consumer group."""

    name: str
    what: str
    events: int
    seconds: float
    wall_s: float
    python_cores: float
    machine_cores: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.rate, 1),
            "wall_s": round(self.wall_s, 3),
            "cpu_cores": {
                "python": round(self.python_cores, 2),
                "machine": round(self.machine_cores, 2),
            },
            **self.extra,
        }


@contextmanager
def measured(results: list[Stage], name: str, what: str) -> Iterator[Callable[..., None]]:
    """Times the block; the block reports its events (and, optionally, its own window)."""
    start = Clock.read()
    found: dict[str, Any] = {}

    def done(events: int, seconds: float | None = None, **extra: Any) -> None:
        found.update(events=events, seconds=seconds, extra=extra)

    yield done
    end = Clock.read()
    wall = end.wall - start.wall
    if "events" not in found:
        raise RuntimeError(f"stage {name} reported no events")
    results.append(
        Stage(
            name,
            what,
            found["events"],
            found["seconds"] if found["seconds"] is not None else wall,
            wall,
            (end.python - start.python) / wall,
            (end.machine - start.machine) / wall,
            found["extra"],
        )
    )
    status.print(f"  {name}: {found['events']:,} events in {wall:.1f} s")


def wait_until(
    condition: Callable[[], bool],
    what: str,
    limit_s: float = STAGE_TIMEOUT_S,
    interval: float = 0.05,
    progress: Callable[[], str] | None = None,
) -> bool:
    """Whether the condition came true within the limit."""
    began = time.monotonic()
    said = began
    while not condition():
        now = time.monotonic()
        if now - began > limit_s:
            return False
        if progress is not None and now - said >= PROGRESS_EVERY_S:
            status.print(f"  {what}: {progress()} after {now - began:.0f} s")
            said = now
        time.sleep(interval)
    return True


# --- 1. the event store -----------------------------------------------------------------------


@dataclass
class InFlight:
    order: Order
    items: list[InventoryItem]
    steps: deque[str]


class Shop:
    """Every aggregate stays in memory and each command's events go to the next batch, in
    the order the unit of work would append them; one save holds many commands."""

    def __init__(self, app: OrderFlowApplication, rng: random.Random) -> None:
        self.app = app
        self.rng = rng
        self.items: list[InventoryItem] = []
        self.flights: list[InFlight] = []
        self.pending: list[DomainEventProtocol[uuid.UUID]] = []
        self.emitted = 0
        self.orders = 0
        self._paths = [path for path, _ in LIFECYCLES]
        self._weights = [weight for _, weight in LIFECYCLES]

    def _record(self, *aggregates: InventoryItem | Order) -> None:
        events = sorted(
            (e for a in aggregates for e in a.collect_events()), key=lambda e: e.timestamp
        )
        self.pending.extend(events)
        self.emitted += len(events)

    def save(self, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= SAVE_BATCH_EVENTS):
            metadata = {
                "correlation_id": str(uuid.uuid4()),
                "causation_id": str(uuid.uuid4()),
                "actor": "bench-operator",
            }
            self.app.save(*self.pending, metadata=metadata)
            self.pending.clear()

    def stock(self) -> None:
        for n in range(SKU_COUNT):
            sku = f"P-{n:04d}"
            item = InventoryItem(
                sku=sku, name=f"product {n}", unit_price_cents=self.rng.randint(199, 19_999)
            )
            item.receive(ON_HAND)
            self.items.append(item)
            self._record(item)
        self.save(force=True)

    def place(self) -> None:
        chosen = self.rng.sample(self.items, k=self.rng.randint(1, 3))
        quantities = [self.rng.randint(1, 3) for _ in chosen]
        lines = [
            priced_line(item.sku, quantity, item.unit_price_cents)
            for item, quantity in zip(chosen, quantities, strict=True)
        ]
        order = Order.place(f"customer-{self.rng.randrange(CUSTOMERS)}", lines)
        for item, quantity in zip(chosen, quantities, strict=True):
            item.reserve(order.id, quantity)
        order.mark_reserved()
        self._record(order, *chosen)
        path = self.rng.choices(self._paths, self._weights)[0]
        self.flights.append(InFlight(order, chosen, deque(path)))
        self.orders += 1

    def advance(self, flight: InFlight) -> None:
        order, items = flight.order, flight.items
        step = flight.steps.popleft()
        ref = f"pay-{order.id.hex[:12]}"
        if step == "pay":
            order.pay(order.total_cents, ref)
            self._record(order)
        elif step == "fail_payment":
            order.record_payment_failure("card declined", ref)
            self._record(order)
        elif step == "ship":
            order.ship("DHL", f"TRK{order.id.hex[:10].upper()}")
            for item in items:
                item.commit(order.id)
            self._record(order, *items)
        elif step == "deliver":
            order.deliver()
            self._record(order)
        elif step == "cancel":
            holds_stock = order.holds_reservations
            order.cancel("customer changed their mind")
            if holds_stock:
                for item in items:
                    item.release(order.id, reason="cancelled")
            self._record(order, *items)
        else:
            raise ValueError(f"unknown step {step!r}")

    def look_after_stock(self) -> None:
        item = self.rng.choice(self.items)
        if self.rng.random() < 0.5:
            item.change_price(self.rng.randint(199, 19_999))
        else:
            item.adjust(self.rng.choice((-2, -1, 1, 2)), "stock count")
        self._record(item)

    def round(self, new_orders: int) -> None:
        """Orders placed earlier move one step on; then new ones come in."""
        moving, self.flights = self.flights, []
        for flight in moving:
            self.advance(flight)
            if flight.steps:
                self.flights.append(flight)
        for _ in range(new_orders):
            self.place()
        self.look_after_stock()
        self.save()

    def fill(self, target: int) -> None:
        self.stock()
        while self.emitted < target:
            self.round(ORDERS_PER_ROUND)
        while self.flights:
            self.round(0)
        self.save(force=True)


def event_mix(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            f"SELECT topic, count(*) FROM {EVENTS_TABLE} GROUP BY topic ORDER BY 2 DESC"
        ).fetchall()
    return {str(topic).split(":", 1)[1].split(".", 1)[1]: int(n) for topic, n in rows}


# --- 2. relay -----------------------------------------------------------------------------------


def relay_everything(settings: Settings, app: OrderFlowApplication, head: int) -> int:
    relay = Relay(settings, EventLog(app))
    thread = threading.Thread(target=relay.run, name="relay", daemon=True)
    thread.start()
    try:
        if not wait_until(lambda: relay.published >= head, "relay"):
            raise RuntimeError(f"relay: {relay.published} of {head} events in {STAGE_TIMEOUT_S} s")
    finally:
        relay.stop()
        thread.join(timeout=30)
    return relay.published


Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def produced_records(settings: Settings, app: OrderFlowApplication) -> Iterator[list[Record]]:
    """The relay's records, encoded ahead, RAW_PRODUCE_CHUNK at a time (bounded memory)."""
    chunk: list[Record] = []
    for envelopes in EventLog(app).iterate(0, batch=SCAN_BATCH):
        for envelope in envelopes:
            key, value, headers = encode(envelope)
            chunk.append((topic_for(settings, envelope.aggregate_type), key, value, headers))
        if len(chunk) >= RAW_PRODUCE_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def raw_produce(settings: Settings, app: OrderFlowApplication) -> tuple[int, float]:
    """A bare producer (kafka-python's defaults but acks=all) sends the same records to
    topics of their own; the clock runs only while it sends. Returns (records
    acknowledged, seconds)."""
    ensure_topics(settings)
    sent, seconds = 0, 0.0
    began = time.perf_counter()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers(settings), acks="all", client_id="bench-raw-producer"
    )
    seconds += time.perf_counter() - began
    try:
        for chunk in produced_records(settings, app):
            began = time.perf_counter()
            futures = [producer.send(t, key=k, value=v, headers=h) for t, k, v, h in chunk]
            producer.flush(timeout=STAGE_TIMEOUT_S)
            sent += sum(1 for future in futures if future.get(timeout=STAGE_TIMEOUT_S))
            seconds += time.perf_counter() - began
    finally:
        producer.close(timeout=5)
    return sent, seconds


def topic_end_offsets(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers(settings))
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in all_topics(settings)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


# --- 3. raw Kafka consumer -----------------------------------------------------------------------


@dataclass(frozen=True)
class Consumed:
    records: int
    join_s: float  # from subscribing to the first records
    seconds: float  # from the first records to the last


def raw_consume(settings: Settings, total: int) -> Consumed:
    """Subscribes with a fresh group like the projector does and reads to the end,
    decoding nothing."""
    began = time.perf_counter()
    consumer = KafkaConsumer(
        *all_topics(settings),
        bootstrap_servers=bootstrap_servers(settings),
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        client_id="bench-raw-consumer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
    )
    try:
        first: float | None = None
        count = 0
        deadline = time.monotonic() + STAGE_TIMEOUT_S
        while count < total:
            polled = consumer.poll(timeout_ms=200)
            if not polled:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"raw consumer: {count} of {total} records")
                continue
            if first is None:
                first = time.perf_counter()
            count += sum(len(records) for records in polled.values())
        end = time.perf_counter()
    finally:
        consumer.close()
    assert first is not None
    return Consumed(count, first - began, end - first)


# --- 4. the projector --------------------------------------------------------------------------


class TimedRunner(SqlProjector):
    """The runner the projector drives, noting when its first batch came and its last went."""

    def __init__(self, store: ReadStore) -> None:
        super().__init__(store, SQL_READ_MODELS)
        self.first: float | None = None
        self.last = 0.0
        self.envelopes = 0
        self.batches = 0

    def apply(self, envelopes: Sequence[Envelope]) -> int:
        if self.first is None:
            self.first = time.perf_counter()
        applied = super().apply(envelopes)
        self.envelopes += len(envelopes)
        self.batches += 1
        self.last = time.perf_counter()
        return applied


def pending_rows(store: ReadStore) -> int:
    with store.read() as tx:
        row = tx.one("SELECT count(*) AS n FROM projection_pending")
    return int(row["n"]) if row else 0


@dataclass(frozen=True)
class Projected:
    envelopes: int
    batches: int
    join_s: float
    seconds: float
    max_pending: int  # positions held beyond a watermark, at the worst moment sampled
    reached_head: bool


def project(settings: Settings, store: ReadStore, head: int, budget_s: float) -> Projected:
    """Until every watermark reaches the head, or the budget is spent: then the rate is
    that of the envelopes applied so far."""
    runner = TimedRunner(store)
    runner.setup()
    projector = KafkaFeed(settings, runner)
    began = time.perf_counter()
    thread = threading.Thread(target=projector.run, name="projector", daemon=True)
    thread.start()
    max_pending = 0

    def caught_up() -> bool:
        nonlocal max_pending
        max_pending = max(max_pending, pending_rows(store))
        return min(runner.positions().values()) >= head

    try:
        reached = wait_until(
            caught_up,
            "projector",
            limit_s=budget_s,
            interval=0.1,
            progress=lambda: f"{runner.envelopes:,} of {head:,} envelopes applied",
        )
    finally:
        projector.stop()
        thread.join(timeout=STAGE_TIMEOUT_S)  # lets the batch in hand commit
    if runner.first is None:
        raise RuntimeError(f"the projector applied nothing within {budget_s:.0f} s")
    return Projected(
        runner.envelopes,
        runner.batches,
        runner.first - began,
        runner.last - runner.first,
        max_pending,
        reached,
    )


# --- 4b. two projector processes -------------------------------------------------------------


def _projector_process(
    settings: Settings, group: str, head: int, budget_s: float, out: Any
) -> None:
    """One projector process: applies until every watermark reaches the head (whoever
    applied it), then reports (envelopes, first, last) in wall-clock seconds."""
    logging.getLogger("kafka").setLevel(logging.ERROR)
    store = PostgresReadStore(settings.read_database_url or "", settings.postgres_pool_size)
    runner = TimedRunner(store)
    projector = KafkaFeed(settings, runner, group=group)
    thread = threading.Thread(target=projector.run, name="projector", daemon=True)
    thread.start()
    wait_until(lambda: min(runner.positions().values()) >= head, "projector", budget_s, 0.1)
    projector.stop()
    thread.join(timeout=STAGE_TIMEOUT_S)
    shift = time.time() - time.perf_counter()  # to compare with the other process
    first = (runner.first + shift) if runner.first is not None else None
    out.put((runner.envelopes, first, runner.last + shift))
    store.close()


def project_in_processes(settings: Settings, head: int, budget_s: float, n: int) -> Projected:
    """`n` projector processes, one consumer group, the same read models (fresh)."""
    SqlProjector(PostgresReadStore(settings.read_database_url or ""), SQL_READ_MODELS).setup()
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    group = f"bench-parallel-{uuid.uuid4().hex[:8]}"
    began = time.time()
    workers = [
        spawn.Process(target=_projector_process, args=(settings, group, head, budget_s, out))
        for _ in range(n)
    ]
    for worker in workers:
        worker.start()
    found = [out.get(timeout=budget_s + STAGE_TIMEOUT_S) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    starts = [first for _, first, _ in found if first is not None]
    if not starts:
        raise RuntimeError(f"{n} projector processes applied nothing within {budget_s:.0f} s")
    first, last = min(starts), max(last for _, _, last in found)
    envelopes = sum(e for e, _, _ in found)
    store = PostgresReadStore(settings.read_database_url or "")
    reached = min(SqlProjector(store, SQL_READ_MODELS).positions().values()) >= head
    store.close()
    return Projected(envelopes, 0, first - began, last - first, 0, reached)


# --- 5. rebuilds and the raw scan ----------------------------------------------------------------


def read_log(app: OrderFlowApplication) -> int:
    """The rebuild's input alone: the whole log as envelopes, applied to nothing."""
    return sum(len(batch) for batch in EventLog(app).scan(0, batch=SCAN_BATCH))


def raw_scan(dsn: str) -> int:
    rows = 0
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench_scan") as cursor:
        cursor.itersize = SCAN_BATCH
        cursor.execute(f"SELECT * FROM {EVENTS_TABLE} ORDER BY notification_id")
        while batch := cursor.fetchmany(SCAN_BATCH):
            rows += len(batch)
    return rows


def _rebuild_all_process(settings: Settings, out: Any) -> None:
    app = open_event_store(settings)
    store = PostgresReadStore(settings.read_database_url or "", settings.postgres_pool_size)
    began = time.perf_counter()
    reports = rebuild_all(SQL_READ_MODELS, store, EventLog(app), batch=SCAN_BATCH)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out.put((reports[0].events, seconds, peak_kib * 1024))
    store.close()
    app.close()


def rebuild_all_in_child(settings: Settings) -> tuple[int, float, int]:
    """(events, seconds, peak RSS in bytes) of `rebuild_all` in a fresh process: its peak
    is the rebuild's own, not the event-store filler's."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    child = spawn.Process(target=_rebuild_all_process, args=(settings, out))
    child.start()
    found: tuple[int, float, int] = out.get(timeout=STAGE_TIMEOUT_S * 4)
    child.join(timeout=60)
    return found


def read_model_bytes(store: ReadStore) -> int:
    """The read models' own size on disk (tables and indexes)."""
    names = [t.name for p in SQL_READ_MODELS for t in p.tables]
    with store.read() as tx:
        row = tx.one(
            "SELECT sum(pg_total_relation_size(c.oid)) AS n FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (names,),
        )
    return int(row["n"]) if row and row["n"] is not None else 0


def crc32c_implementation() -> str:
    """kafka-python checks every record batch's CRC-32C, in pure Python unless the optional
    `crc32c` package is installed; both consumers here pay the same."""
    return "python" if kafka_record_util.crc32c_c is None else "c"


def table_digests(store: ReadStore) -> dict[str, str]:
    """Row count and a digest of every read-model table, to compare two builds."""
    digests = {}
    with store.read() as tx:
        for projection in SQL_READ_MODELS:
            for table in projection.tables:
                row = tx.one(
                    f"SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS d "
                    f"FROM {table.name} t"
                )
                assert row is not None
                digests[table.name] = f"{row['n']}:{row['d']}"
    return digests


# --- report ------------------------------------------------------------------------------------


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
        rate = {s.name: s.rate for s in self.stages}
        figures = {
            "projector/raw_consume": rate["projector"] / rate["raw_consume"],
            "relay/raw_produce": rate["relay"] / rate["raw_produce"],
            "rebuild_all/raw_scan": rate["rebuild_all"] / rate["raw_scan"],
            **{
                f"rebuild_{p.name}/raw_scan": rate[f"rebuild_{p.name}"] / rate["raw_scan"]
                for p in SQL_READ_MODELS
            },
            "log_read/raw_scan": rate["log_read"] / rate["raw_scan"],
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


def ratio_table(outcome: Outcome) -> Table:
    table = Table(title="Ratios (1.0 = as fast as the baseline)")
    table.add_column("ratio")
    table.add_column("value", justify="right")
    for name, value in outcome.ratios().items():
        table.add_row(name, f"{value:.3f}")
    return table


def notes(outcome: Outcome) -> list[str]:
    raw, projector = outcome.stage("raw_consume"), outcome.stage("projector")
    mix = ", ".join(f"{kind} {n:,}" for kind, n in outcome.mix.items())
    return [
        f"{outcome.head:,} events ({outcome.orders:,} orders over {SKU_COUNT} SKUs): {mix}",
        f"Kafka: {len(SQL_READ_MODELS)} projections, 2 topics x 3 partitions, max_poll_records"
        f" {POLL_RECORDS}; consumer rates run from the first records to the last (group join"
        f" excluded: raw {raw.extra['join_s']:.2f} s, projector"
        f" {projector.extra['join_s']:.2f} s); the raw consumer commits no offsets;"
        f" kafka-python's CRC-32C check runs in {crc32c_implementation()} for both",
        "raw_produce: the relay's records (same topics' partitioning, keys, values, headers),"
        f" encoded ahead {RAW_PRODUCE_CHUNK:,} at a time off the clock, sent by a bare"
        " kafka-python producer: its defaults but acks=all (the relay adds idempotence, 5 ms"
        " linger and 256 KiB batches)",
        "rebuild_all: every projection rebuilt in one pass over the log (rebuild_all, in a"
        f" child process: peak RSS {outcome.stage('rebuild_all').extra['peak_rss_mb']:,} MB,"
        f" read models {outcome.stage('rebuild_all').extra['read_models_mb']:,} MB on disk)."
        " log_read: the same reads into envelopes, applied to nothing",
        "projector_2_processes: two projector processes in one consumer group into fresh"
        " read models, from the first batch either applied to the last",
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
    if outcome.busy_before > BUSY_WARNING_CORES:
        found.append("the machine was busy before the run started: the figures are skewed")
    return found


def json_line(outcome: Outcome) -> str:
    return json.dumps(
        {
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
        },
        separators=(",", ":"),
    )


def report(outcome: Outcome) -> None:
    console.print(stages_table(outcome))
    console.print(ratio_table(outcome))
    for note in notes(outcome):
        console.print(f"- {note}", highlight=False)
    for warning in warnings(outcome):
        console.print(f"[bold red]! {warning}", highlight=False)
    print(json_line(outcome), flush=True)


# --- main ---------------------------------------------------------------------------------------


def start_services(work_dir: Path, stack: ExitStack) -> tuple[PostgresServer, KafkaBroker]:
    status.print("starting PostgreSQL and Kafka…")
    pg = PostgresServer(work_dir / "postgres")
    pg.start()
    stack.callback(pg.stop)
    ensure_kafka_jars()
    broker = KafkaBroker(work_dir / "kafka")
    broker.start()
    stack.callback(broker.stop)
    return pg, broker


def run(plan: Plan, work_dir: Path, stack: ExitStack) -> Outcome:
    began = time.monotonic()
    busy_before = busy_cores()
    pg, broker = start_services(work_dir, stack)
    events_dsn = pg.create_database("events")
    reads_dsn = pg.create_database("reads")
    settings = Settings(
        data_dir=work_dir / "orderflow",
        database_url=events_dsn,
        read_database_url=reads_dsn,
        jwt_secret=JWT_SECRET,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_prefix="bench",
        projector_group="bench-projectors",
    )
    app = open_event_store(settings)
    stack.callback(app.close)
    store = PostgresReadStore(reads_dsn, settings.postgres_pool_size)
    stack.callback(store.close)
    stages: list[Stage] = []

    status.print(f"filling the event store with ≥ {plan.events:,} events…")
    shop = Shop(app, random.Random(SEED))
    with measured(stages, "fill", "aggregates + app.save, 5k events a save") as done:
        shop.fill(plan.events)
        done(shop.emitted)
    head = EventLog(app).head()

    status.print("relaying to Kafka…")
    ensure_topics(settings)  # created off the clock, as the raw producer's are
    with measured(stages, "relay", "OrderFlow relay: event store -> Kafka") as done:
        done(relay_everything(settings, app, head))
    on_kafka = topic_end_offsets(settings)
    raw_topics = settings.model_copy(update={"kafka_topic_prefix": "bench-raw"})
    with measured(stages, "raw_produce", "bare kafka-python producer, same records") as done:
        produced, produce_s = raw_produce(raw_topics, app)
        done(produced, produce_s)

    status.print("consuming and projecting…")
    with measured(stages, "raw_consume", "bare kafka-python consumer, no decoding") as done:
        consumed = raw_consume(settings, on_kafka)
        done(consumed.records, consumed.seconds, join_s=round(consumed.join_s, 3))
    with measured(stages, "projector", "KafkaFeed + SqlProjector, all") as done:
        projected = project(settings, store, head, plan.projector_budget_s)
        done(
            projected.envelopes,
            projected.seconds,
            join_s=round(projected.join_s, 3),
            batches=projected.batches,
            max_pending_rows=projected.max_pending,
            reached_head=projected.reached_head,
        )
    projected_digests = table_digests(store)

    parallel_dsn = pg.create_database("reads_parallel")
    parallel = settings.model_copy(update={"read_database_url": parallel_dsn})
    with measured(stages, "projector_2_processes", "2 projector processes, one group") as done:
        two = project_in_processes(parallel, head, plan.projector_budget_s, 2)
        done(two.envelopes, two.seconds, join_s=round(two.join_s, 3), reached_head=two.reached_head)

    status.print("scanning and rebuilding…")
    with measured(stages, "raw_scan", "bare psycopg server-side cursor scan") as done:
        done(raw_scan(events_dsn))
    with measured(stages, "log_read", "EventLog.scan into envelopes") as done:
        done(read_log(app))
    rebuilt: list[Stage] = []
    for projection in SQL_READ_MODELS:
        with measured(
            rebuilt, f"rebuild_{projection.name}", "rebuild() into shadow + swap"
        ) as done:
            done(rebuild(projection, store, EventLog(app)).events)
    stages.extend(rebuilt)
    with measured(
        stages, "rebuild_all", f"rebuild_all(): {len(SQL_READ_MODELS)} projections, one pass"
    ) as done:
        events_read, seconds, peak = rebuild_all_in_child(settings)
        done(
            events_read,
            seconds,
            peak_rss_mb=round(peak / 2**20, 1),
            read_models_mb=round(read_model_bytes(store) / 2**20, 1),
        )

    complete = projected.reached_head
    checks: dict[str, bool | None] = {  # None: not checked, the projector did not finish
        "relayed_equals_head": on_kafka == head,
        "raw_produced_equals_head": produced == head,
        "projector_reached_head": complete,
        "projector_saw_every_event_once": projected.envelopes == head if complete else None,
        "orders_projected": (
            int(projected_digests["orders"].split(":")[0]) == shop.orders if complete else None
        ),
        "rebuild_equals_projector": (
            table_digests(store) == projected_digests if complete else None
        ),
    }
    return Outcome(
        plan,
        head,
        shop.orders,
        event_mix(events_dsn),
        stages,
        checks,
        busy_before,
        time.monotonic() - began,
    )


def exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    """So a `kill` unwinds through the cleanups like Ctrl-C does."""
    sys.exit(128 + signum)


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--events", type=int, help=f"at least this many events (default {DEFAULT_EVENTS:,})"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events")
    size.add_argument("--full", action="store_true", help=f"{FULL_EVENTS:,} events (takes a while)")
    parser.add_argument(
        "--projector-budget",
        type=float,
        default=PROJECTOR_BUDGET_S,
        metavar="SECONDS",
        help="stop the projector after this long if it has not reached the head"
        f" (default {PROJECTOR_BUDGET_S:g})",
    )
    args = parser.parse_args()
    events = args.events or (
        QUICK_EVENTS if args.quick else FULL_EVENTS if args.full else DEFAULT_EVENTS
    )
    return Plan(events, args.projector_budget)


def main() -> None:
    plan = parse_plan()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # kafka-python warns about every slow poll when the machine is busy; errors still show
    logging.getLogger("kafka").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="orderflow-bench-") as tmp, ExitStack() as stack:
        outcome = run(plan, Path(tmp), stack)
    report(outcome)


if __name__ == "__main__":
    main()
