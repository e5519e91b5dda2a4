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

from bench.projection.stages import STAGE_TIMEOUT_S, wait_until
from infra.kafka.consumer import KafkaFeed
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
    SqlProjector(PostgresReadStore(settings.read_database_url or ""), SQL_READ_MODELS).setup(
        claim_set=True
    )
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
