"""The worker process: rounds of the expiry service (commands/expiry.py) over the read
store's index of reservation deadlines, every `interval_s` while a round finds nothing.

On each round it also purges idempotent answers older than the idempotency window, after
which their keys are new requests (a DELETE by an indexed time: harmless when several
workers run it)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from commands.bus import CommandBus
from commands.expiry import Clock, Due, Expiry
from infra.observability import metrics
from infra.retrying import run_until_stopped
from projections.ports import ReadStore

log = logging.getLogger(__name__)


class AnswerPurge(Protocol):
    def purge(self, before: datetime) -> int: ...


class DeadlineIndex:
    """The orders due, from the `reservation_deadlines` read model."""

    def __init__(self, store: ReadStore) -> None:
        self.store = store

    def due(self, cutoff: datetime, after: Due | None, limit: int) -> list[Due]:
        where, params = "reserved_at <= %s", [cutoff.astimezone(UTC).isoformat()]
        if after is not None:
            where += " AND (reserved_at, order_id) > (%s, %s)"
            params += after
        with self.store.read() as tx:
            rows = tx.all(
                f"SELECT reserved_at, order_id FROM reservation_deadlines WHERE {where} "
                "ORDER BY reserved_at, order_id LIMIT %s",
                [*params, limit],
            )
        return [(r["reserved_at"], str(r["order_id"])) for r in rows]


class ExpiryWorker:
    def __init__(
        self,
        bus: CommandBus,
        store: ReadStore,
        ttl: timedelta,
        interval_s: float = 1.0,
        batch: int = 200,
        clock: Clock = lambda: datetime.now(UTC),
        answers: AnswerPurge | None = None,
        idempotency_window: timedelta = timedelta(hours=24),
    ) -> None:
        self.expiry = Expiry(bus, DeadlineIndex(store), ttl, batch, clock)
        self.interval_s, self.clock = interval_s, clock
        self.answers, self.idempotency_window = answers, idempotency_window
        self.stop_event = threading.Event()

    @property
    def expired(self) -> int:
        return self.expiry.expired

    def purge_answers(self) -> int:
        """Forgets idempotent answers older than the window; returns how many."""
        if self.answers is None:
            return 0
        purged = self.answers.purge(self.clock() - self.idempotency_window)
        metrics.IDEMPOTENCY_PURGED.inc(purged)
        return purged

    def run_once(self) -> int:
        """Expires everything due now (and purges old idempotent answers); returns how many
        orders this call expired."""
        self.purge_answers()
        return self.expiry.run_once(self.stop_event.is_set)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            if self.run_once() == 0:
                self.stop_event.wait(self.interval_s)

    def run(self) -> None:
        run_until_stopped(self._loop, self.stop_event, log, "expiry worker")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="expiry-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
