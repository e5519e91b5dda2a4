"""The expiry worker: reserved orders unpaid past the TTL expire and give their stock back.

It reads the due-time index (projections/reservations.py), never all orders, and sends
one ExpireOrder command per order: one transaction each, which a second worker racing for
the same order cannot repeat (the order is no longer reserved when it retries).

Each pass pages through everything due (keyset on reserved_at, order_id), so rows it
cannot expire never stall the ones behind them. Such a row (an order paid, cancelled or
gone whose index entry was not removed, say because that event is parked as a dead
letter) is remembered and not tried again while the index still lists it: an order that
is no longer reserved never becomes reserved again.

On each round it also purges idempotent answers older than the idempotency window, after
which their keys are new requests (a DELETE by an indexed time: harmless when several
workers run it)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from commands.bus import CommandBus
from commands.ports import CommandContext, NotFound
from domain.errors import InvalidTransition
from infra.observability import metrics
from infra.retrying import run_until_stopped
from projections.ports import ReadStore
from schemas.commands import ExpireOrder

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class AnswerPurge(Protocol):
    def purge(self, before: datetime) -> int: ...


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
        self.bus, self.store, self.ttl = bus, store, ttl
        self.interval_s, self.batch, self.clock = interval_s, batch, clock
        self.answers, self.idempotency_window = answers, idempotency_window
        self.stop_event = threading.Event()
        self.expired = 0
        self._unexpirable: set[str] = set()  # order ids due that refused to expire

    def due(self, after: tuple[Any, str] | None = None) -> list[tuple[Any, str]]:
        """One page of (reserved_at, order_id) due now, oldest first, after `after`."""
        cutoff = (self.clock() - self.ttl).astimezone(UTC).isoformat()
        where, params = "reserved_at <= %s", [cutoff]
        if after is not None:
            where += " AND (reserved_at, order_id) > (%s, %s)"
            params += after
        with self.store.read() as tx:
            rows = tx.all(
                f"SELECT reserved_at, order_id FROM reservation_deadlines WHERE {where} "
                "ORDER BY reserved_at, order_id LIMIT %s",
                [*params, self.batch],
            )
        return [(r["reserved_at"], str(r["order_id"])) for r in rows]

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
        expired = 0
        listed: set[str] = set()
        after: tuple[Any, str] | None = None
        while not self.stop_event.is_set():
            page = self.due(after)
            for _, order_id in page:
                listed.add(order_id)
                if order_id not in self._unexpirable and self._expire(UUID(order_id)):
                    expired += 1
            if len(page) < self.batch:
                break
            after = page[-1]
        else:
            return expired  # stopped mid-pass: what was not listed may still be due
        self._unexpirable &= listed  # the index forgot the others: no need to remember
        return expired

    def _expire(self, order_id: UUID) -> bool:
        context = CommandContext(correlation_id=f"expiry-{order_id}", actor="expiry-worker")
        try:
            self.bus.handle(ExpireOrder(order_id=order_id), context)
        except (InvalidTransition, NotFound) as refused:
            # paid, cancelled or expired meanwhile (usually by this worker, the index not
            # caught up yet); or the index is stuck behind a dead letter, which says so
            log.debug("order %s is due but cannot expire: %s", order_id, refused)
            self._unexpirable.add(str(order_id))
            return False
        self.expired += 1
        log.info("order %s expired after %s unpaid", order_id, self.ttl)
        return True

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
