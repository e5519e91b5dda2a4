"""Synthetic order traffic for the reporting bench: a year of orders and stock events,
as envelopes in position order."""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.envelope import Envelope

SKUS = [f"SKU-{n:04d}" for n in range(500)]
PRICES = {sku: random.Random(sku).randint(199, 49_900) for sku in SKUS}
START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS = 365


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
        lines: list[dict[str, Any]] = [
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
