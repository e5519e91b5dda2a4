"""OrderFlow's Kafka projector into fresh read models, in this process and in two."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer

from bench.projection.stages import STAGE_TIMEOUT_S, wait_until
from infra.kafka.consumer import KafkaFeed
from infra.kafka.topics import all_topics
from infra.readstore.store import PostgresReadStore
from infra.settings import Settings
from projections.ports import ReadStore
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.envelope import Envelope


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
    runner.setup(claim_set=True)  # as `orderflow project` does
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


# --- two projector processes in one group ------------------------------------------------------
# The clock starts once the group is formed, both processes holding partitions: until then
# each process keeps whatever it is assigned paused. Started together, one process used to
# join first, take every partition and apply; at --quick (about 0.7 s of work) it sometimes
# applied the whole log before the other joined (ADR 0018, session 25), so the stage
# measured one process and a rebalance, not two.

GROUP_FORMED_POLL_S = 0.05


class GatedFeed(KafkaFeed):
    """A projector that applies nothing until `gate` is set: it polls (so that it joins
    the group and follows its rebalances), puts back what a poll returned and pauses what
    it is assigned, and publishes how many partitions it holds in `assigned`."""

    def __init__(
        self, settings: Settings, runner: SqlProjector, group: str, gate: Any, assigned: Any
    ) -> None:
        super().__init__(settings, runner, group=group)
        self.gate, self.assigned = gate, assigned
        self.opened = False

    def _batch(self, consumer: KafkaConsumer) -> None:
        if self.opened:
            super()._batch(consumer)
            return
        if self.gate.is_set():
            consumer.resume(*consumer.assignment())
            self.opened = True
            return
        polled = consumer.poll(timeout_ms=int(GROUP_FORMED_POLL_S * 1000))  # joins, rejoins
        for partition, records in polled.items():
            consumer.seek(partition, records[0].offset)  # not taken: fetched again once open
        consumer.pause(*consumer.assignment())  # a rebalance assigns partitions unpaused
        self.assigned.value = len(consumer.assignment())
        self.gate.wait(GROUP_FORMED_POLL_S)


def _projector_process(
    settings: Settings,
    group: str,
    head: int,
    budget_s: float,
    gate: Any,
    assigned: Any,
    out: Any,
) -> None:
    """One projector process: joins the group, applies once the gate opens, until every
    watermark reaches the head (whoever applied it), then reports (envelopes, first,
    last) in wall-clock seconds."""
    logging.getLogger("kafka").setLevel(logging.ERROR)
    store = PostgresReadStore(settings.read_database_url or "", settings.postgres_pool_size)
    runner = TimedRunner(store)
    projector = GatedFeed(settings, runner, group, gate, assigned)
    thread = threading.Thread(target=projector.run, name="projector", daemon=True)
    thread.start()
    wait_until(lambda: min(runner.positions().values()) >= head, "projector", budget_s, 0.1)
    projector.stop()
    thread.join(timeout=STAGE_TIMEOUT_S)
    shift = time.time() - time.perf_counter()  # to compare with the other process
    first = (runner.first + shift) if runner.first is not None else None
    out.put((runner.envelopes, first, runner.last + shift))
    store.close()


@dataclass(frozen=True)
class ProjectedTogether:
    projected: Projected
    envelopes_each: list[int]  # what each process applied (redeliveries included)


def project_in_processes(
    settings: Settings, head: int, budget_s: float, n: int
) -> ProjectedTogether:
    """`n` projector processes, one consumer group, the same read models (fresh), timed
    from the moment every process holds partitions (the group formed)."""
    SqlProjector(PostgresReadStore(settings.read_database_url or ""), SQL_READ_MODELS).setup(
        claim_set=True
    )
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    gate = spawn.Event()
    assigned = [spawn.Value("i", 0) for _ in range(n)]
    group = f"bench-parallel-{uuid.uuid4().hex[:8]}"
    partitions = len(all_topics(settings)) * settings.kafka_partitions
    began = time.time()
    workers = [
        spawn.Process(
            target=_projector_process,
            args=(settings, group, head, budget_s, gate, held, out),
        )
        for held in assigned
    ]
    for worker in workers:
        worker.start()

    def formed() -> bool:
        if ended := [w.exitcode for w in workers if not w.is_alive()]:
            raise RuntimeError(f"a projector process ended before its group formed: {ended}")
        held = [int(a.value) for a in assigned]
        return min(held) > 0 and sum(held) == partitions

    if not wait_until(formed, "projector group", STAGE_TIMEOUT_S, GROUP_FORMED_POLL_S):
        raise RuntimeError(f"{n} projector processes never shared {partitions} partitions")
    opened = time.time()
    gate.set()
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
    return ProjectedTogether(
        Projected(envelopes, 0, opened - began, last - first, 0, reached),
        [e for e, _, _ in found],
    )
