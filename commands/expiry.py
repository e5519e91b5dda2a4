"""Expiring reservations: reserved orders unpaid past the TTL expire and give their stock
back.

Which orders are due comes from an index of reservation deadlines (the read side keeps
one, projections/reservations.py), never from all orders; each due order gets one
ExpireOrder command: one transaction each, which a second worker racing for the same
order cannot repeat (the order is no longer reserved when it retries).

Each pass pages through everything due (keyset on reserved_at, order_id), so rows it
cannot expire never stall the ones behind them. Such a row (an order paid, cancelled or
gone whose index entry was not removed, say because that event is parked as a dead
letter) is remembered and not tried again while the index still lists it: an order that
is no longer reserved never becomes reserved again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from commands.bus import CommandBus
from commands.errors import NotFound
from commands.ports import CommandContext
from domain.errors import InvalidTransition
from schemas.commands import ExpireOrder

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Due = tuple[Any, str]  # (reserved_at, order_id): the index's keyset order


class DueOrders(Protocol):
    def due(self, cutoff: datetime, after: Due | None, limit: int) -> list[Due]:
        """Up to `limit` orders reserved at or before `cutoff`, in keyset order after
        `after`."""
        ...


class Expiry:
    def __init__(
        self,
        bus: CommandBus,
        due_orders: DueOrders,
        ttl: timedelta,
        batch: int = 200,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.bus, self.due_orders, self.ttl = bus, due_orders, ttl
        self.batch, self.clock = batch, clock
        self.expired = 0
        self._unexpirable: set[str] = set()  # order ids due that refused to expire

    def due(self, after: Due | None = None) -> list[Due]:
        """One page of what is due now, oldest first, after `after`."""
        return self.due_orders.due(self.clock() - self.ttl, after, self.batch)

    def run_once(self, stopped: Callable[[], bool] = lambda: False) -> int:
        """Expires everything due now; returns how many orders this pass expired."""
        expired = 0
        listed: set[str] = set()
        after: Due | None = None
        while not stopped():
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
