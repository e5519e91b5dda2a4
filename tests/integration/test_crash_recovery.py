"""Exactly-once effect under crashes: the relay and the projector run as real `orderflow`
subprocesses and are SIGKILLed mid-stream, several times each, while commands flow; once
the projector has caught up, every read model equals the fold of the event store (no
event lost, none applied twice)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, MemberToRemove

from commands.bus import CommandBus, Committed
from commands.ports import CommandContext
from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.kafka.topics import all_topics
from infra.settings import Settings
from schemas.commands import (
    CancelOrder,
    ChangePrice,
    Command,
    DeliverOrder,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
    ShipOrder,
)
from tests.commanding import placed as facts
from tests.folding import fold_and_compare
from tests.harness.kafka import KafkaBroker, _die_with_parent_hook
from tests.integration.test_kafka_pipeline import kafka_settings
from tests.oracle import assert_read_models_match_aggregates

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

ORDERFLOW = Path(sys.executable).parent / "orderflow"
KILLS_EACH = 3
SKUS = ("CR-1", "CR-2", "CR-3", "CR-4")
MIN_COMMANDS = 500  # commands flow at least this long, and until the last kill
MAX_COMMANDS = 2000
PROGRESS_TIMEOUT_S = 40  # a (re)started service must move within this
CATCH_UP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
TICK_S = 0.02


class Service:
    """One `orderflow <command>` subprocess, started again after each kill; every
    incarnation appends its output to one log file."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [str(ORDERFLOW), self.command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent_hook(),  # none is left behind if pytest dies
            )

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, closed or committed."""
        process, self.process = self.process, None
        assert process is not None
        assert process.poll() is None, f"{self.command} had died on its own\n{self.tail()}"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=STOP_TIMEOUT_S) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not stopped after a while."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- tail of {self.log} ---\n" + "\n".join(text.splitlines()[-lines:])


@dataclass
class Services:
    settings: Settings
    writes: WriteSide
    reads: ReadSide
    relay: Service
    projector: Service
    db: psycopg.Connection[tuple[Any, ...]]

    def relay_position(self) -> int:
        try:
            row = self.db.execute(
                "SELECT position FROM relay_position WHERE name = 'kafka'"
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0  # the relay has not made its table yet
        return int(row[0]) if row else 0

    def watermark(self) -> int:
        """The projector's progress: the least of its projections' watermarks."""
        return min(self.reads.runner.positions().values())

    def head(self) -> int:
        return EventLog(self.writes.app).head()

    def report(self) -> str:
        """Where everything stands, and the services' latest output."""
        return (
            f"head {self.head()}, relay at {self.relay_position()}, projections at "
            f"{self.reads.runner.positions()}\n{self.relay.tail()}\n{self.projector.tail()}"
        )


def subprocess_env(settings: Settings, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    assert settings.database_url is not None
    assert settings.kafka_bootstrap_servers is not None
    env.update(
        PYTHONUNBUFFERED="1",
        ORDERFLOW_DATABASE_URL=settings.database_url,
        ORDERFLOW_JWT_SECRET=settings.token_secret,
        ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        ORDERFLOW_KAFKA_TOPIC_PREFIX=settings.kafka_topic_prefix,
        ORDERFLOW_PROJECTOR_GROUP=settings.projector_group,
        ORDERFLOW_DATA_DIR=str(data_dir),
        ORDERFLOW_POSTGRES_POOL_SIZE="3",
    )
    return env


@pytest.fixture
def services(
    postgres_settings: Settings, kafka_broker: KafkaBroker, tmp_path: Path
) -> Iterator[Services]:
    settings = kafka_settings(postgres_settings, kafka_broker)
    # The tables exist before any subprocess starts: none races another to create them.
    writes, reads = write_side(settings), read_side(settings)
    env = subprocess_env(settings, tmp_path / "data")
    relay = Service("relay", env, tmp_path / "relay.log")
    projector = Service("project", env, tmp_path / "projector.log")
    assert settings.database_url is not None
    db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(
        settings.database_url, autocommit=True
    )
    try:
        yield Services(settings, writes, reads, relay, projector, db)
    finally:
        relay.stop()
        projector.stop()
        db.close()
        reads.close()
        writes.close()


@dataclass
class OpenOrder:
    order_id: uuid.UUID
    total_cents: int
    status: str


@dataclass
class CommandFlow:
    """Commands as clients send them, from a background thread: a few SKUs with plenty
    of stock, then orders placed, paid, shipped, delivered and cancelled, now and then
    stock received or a price changed. Seeded: the same commands every run."""

    bus: CommandBus
    enough: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    placed: int = 0
    error: BaseException | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(20240601))

    def run(self) -> None:
        try:
            for n, sku in enumerate(SKUS):
                price = 100 * (n + 1)
                self.send(RegisterItem(sku=sku, name=sku, unit_price_cents=price, on_hand=10**5))
            orders: list[OpenOrder] = []
            while self.sent < MAX_COMMANDS and not (
                self.enough.is_set() and self.sent >= MIN_COMMANDS
            ):
                self.step(orders)
                time.sleep(0.002)
        except BaseException as failure:
            self.error = failure

    def send(self, command: Command) -> Committed:
        context = CommandContext(correlation_id=f"crash-{self.sent}", actor="crash-test")
        committed = self.bus.handle(command, context)
        self.sent += 1
        return committed

    def step(self, orders: list[OpenOrder]) -> None:
        roll = self.rng.random()
        sku = self.rng.choice(SKUS)
        if roll < 0.02:
            self.send(ReceiveStock(sku=sku, quantity=10))
        elif roll < 0.03:
            self.send(ChangePrice(sku=sku, unit_price_cents=self.rng.randint(50, 500)))
        elif roll < 0.3 or len(orders) < 5:
            skus = self.rng.sample(SKUS, self.rng.randint(1, 3))
            lines = tuple(OrderLineRequest(sku=s, quantity=self.rng.randint(1, 4)) for s in skus)
            new = facts(self.send(PlaceOrder(customer_id=f"c-{self.placed % 7}", lines=lines)))
            orders.append(OpenOrder(new.order_id, new.total_cents, "reserved"))
            self.placed += 1
        else:
            order = self.rng.choice(orders)
            self.send(self.next_command(order))
            if order.status in ("delivered", "cancelled"):
                orders.remove(order)

    def next_command(self, order: OpenOrder) -> Command:
        ref = f"{order.status}-{self.sent}"
        if order.status in ("reserved", "paid") and self.rng.random() < 0.2:
            order.status = "cancelled"
            return CancelOrder(order_id=order.order_id, reason="changed my mind")
        if order.status == "reserved":
            order.status = "paid"
            return PayOrder(
                order_id=order.order_id, amount_cents=order.total_cents, payment_ref=ref
            )
        if order.status == "paid":
            order.status = "shipped"
            return ShipOrder(order_id=order.order_id, carrier="crash", tracking_number=ref)
        order.status = "delivered"
        return DeliverOrder(order_id=order.order_id)


@dataclass
class Kill:
    service: str
    at: int  # the service's progress right after the kill (relay position or watermark)
    head: int  # the event store's head then
    moved_after_s: float  # from its (re)start to its first progress


def evict_dead_members(settings: Settings) -> None:
    """Tells the group coordinator the killed projector is gone, as the end of its session
    would (45 s later, kafka-python's default), so the restarted one joins at once."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        group_id = settings.projector_group
        group = admin.describe_groups([group_id])[group_id]
        members = [MemberToRemove(member_id=m["member_id"]) for m in group["members"]]
        assert members, f"group {group_id} has no member: does the projector use another?"
        admin.remove_group_members(group_id, members)
    finally:
        admin.close()


@dataclass
class Crasher:
    """Kills one service KILLS_EACH times, each a random moment after it moved past where
    it stood at its (re)start (so mid-stream), and restarts it a random moment later."""

    service: Service
    progress: Callable[[], int]
    services: Services
    rng: random.Random
    after_kill: Callable[[], None] = lambda: None
    kills: list[Kill] = field(default_factory=list)
    baseline: int = 0
    started_at: float = 0.0
    moved_after_s: float = 0.0
    kill_at: float | None = None
    restart_at: float | None = None

    @property
    def done(self) -> bool:
        return len(self.kills) == KILLS_EACH and self.restart_at is None

    def start(self) -> None:
        self.service.start()
        self.baseline, self.started_at = self.progress(), time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.start()
        elif len(self.kills) == KILLS_EACH:
            return
        elif self.kill_at is None:
            if self.progress() > self.baseline:
                self.moved_after_s = now - self.started_at
                self.kill_at = now + self.rng.uniform(0, 0.05)
            else:
                waited = now - self.started_at
                assert waited < PROGRESS_TIMEOUT_S, (
                    f"{self.service.command} (start {self.service.starts}) has not moved past "
                    f"{self.baseline} in {waited:.0f} s: {self.services.report()}"
                )
        elif now >= self.kill_at:
            self.kill_at = None
            self.service.kill()
            self.kills.append(
                Kill(
                    self.service.command, self.progress(), self.services.head(), self.moved_after_s
                )
            )
            self.after_kill()
            self.restart_at = time.monotonic() + self.rng.uniform(0, 0.3)  # a backlog builds


def kafka_records(settings: Settings) -> int:
    """How many records the relay's topics hold: more than the events if a killed relay
    had sent part of a batch it then sent again."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in all_topics(settings)
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def test_killed_relay_and_projector_lose_no_event_and_apply_none_twice(
    services: Services,
) -> None:
    began = time.monotonic()
    rng = random.Random()
    relay = Crasher(services.relay, services.relay_position, services, rng)
    projector = Crasher(
        services.projector,
        services.watermark,
        services,
        rng,
        after_kill=lambda: evict_dead_members(services.settings),
    )
    flow = CommandFlow(services.writes.bus)
    commands = threading.Thread(target=flow.run, name="commands", daemon=True)
    commands.start()
    try:
        relay.start()
        projector.start()
        while not (relay.done and projector.done):
            assert commands.is_alive(), f"commands ended before the kills did: {flow.error!r}"
            relay.tick()
            projector.tick()
            time.sleep(TICK_S)
    finally:
        flow.enough.set()
        commands.join(timeout=60)
    assert not commands.is_alive(), "the commands did not stop"
    assert flow.error is None, f"a command failed: {flow.error!r}"

    head = services.head()
    runner = services.reads.runner
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while services.watermark() < head:
        assert time.monotonic() < deadline, (
            f"not caught up {CATCH_UP_TIMEOUT_S} s after the commands: {services.report()}"
        )
        time.sleep(TICK_S)
    assert runner.positions() == dict.fromkeys(runner.positions(), head), services.report()
    events = EventLog(services.writes.app)
    counts = fold_and_compare(services.reads.store, events)  # nothing lost, nothing twice
    assert_read_models_match_aggregates(services.reads.store, services.writes.app)
    envelopes = [e for batch in events.iterate(0) for e in batch]
    created = sum(e.type == "order.created" for e in envelopes)
    assert counts["orders"] == created == flow.placed

    # The kills were real (each asserted a live process that then died of SIGKILL) and
    # landed mid-stream: the service had done part of the work and had more to do.
    kills = relay.kills + projector.kills
    assert services.relay.starts == services.projector.starts == KILLS_EACH + 1
    assert any(0 < k.at < k.head for k in relay.kills), relay.kills
    assert any(0 < k.at < k.head for k in projector.kills), projector.kills
    records = kafka_records(services.settings)
    assert records >= len(envelopes)  # more when the relay had sent part of a batch again
    print(
        f"\n{flow.sent} commands, {len(envelopes)} events, {records} Kafka records, "
        f"{time.monotonic() - began:.1f} s; kills: {kills}"
    )
