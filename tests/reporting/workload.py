"""A seeded shop over several days, through the real command bus and event store, and the
report figures computed straight from its event log (the reference the reports must meet).

The event store stamps events with the library's clock; the workload moves that clock (a
test-only patch of `eventsourcing.domain.datetime_now_with_tzinfo`) so orders are placed,
paid and cancelled on different days, the day paid often not the day placed."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import eventsourcing.domain
import pytest
from clickhouse_connect.driver.client import Client

from commands.bus import CommandBus, Committed
from commands.ports import CommandContext
from projections import reporting_queries as queries
from projections.reporting_projector import ReportingProjector
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
from schemas.envelope import Envelope
from tests.commanding import placed as facts

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CONTEXT = CommandContext(correlation_id="reporting-workload", actor="test")


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, minutes: int) -> None:
        self.moment += timedelta(minutes=minutes)

    @classmethod
    def patched(cls, patch: pytest.MonkeyPatch, start: datetime = START) -> Clock:
        clock = cls(start)
        patch.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", clock.now)
        return clock


def generate(bus: CommandBus, clock: Clock, seed: int, orders: int) -> None:
    """Registers a catalogue, then places `orders` orders a few hours apart; open orders
    move on (paid, shipped, delivered, cancelled before or after payment) some hours or
    days later. Prices change and stock arrives on the way (events reports ignore)."""
    rng = random.Random(seed)

    def send(command: Command) -> Committed:
        return bus.handle(command, CONTEXT)

    skus = [f"SKU-{n:02d}" for n in range(12)]
    for sku in skus:
        send(
            RegisterItem(
                sku=sku, name=sku, unit_price_cents=rng.randint(100, 40_000), on_hand=100_000
            )
        )
    open_orders: list[tuple[UUID, int, str]] = []  # (order, total, status)
    for n in range(orders):
        clock.advance(rng.randint(20, 200))
        lines = tuple(
            OrderLineRequest(sku=sku, quantity=rng.randint(1, 5))
            for sku in rng.sample(skus, rng.randint(1, 4))
        )
        placed = facts(send(PlaceOrder(customer_id=f"customer-{rng.randint(1, 25)}", lines=lines)))
        open_orders.append((placed.order_id, placed.total_cents, "reserved"))
        if n % 17 == 0:
            send(ChangePrice(sku=rng.choice(skus), unit_price_cents=rng.randint(100, 40_000)))
        if n % 23 == 0:
            send(ReceiveStock(sku=rng.choice(skus), quantity=50))
        still_open = []
        for order_id, total, status in open_orders:
            if rng.random() > 0.3:  # not its turn yet: it moves on some hours later
                still_open.append((order_id, total, status))
                continue
            fate = rng.random()
            if status == "reserved" and fate < 0.75:
                send(PayOrder(order_id=order_id, amount_cents=total, payment_ref=f"p-{n}"))
                still_open.append((order_id, total, "paid"))
            elif status in ("reserved", "paid") and fate > 0.9:
                send(CancelOrder(order_id=order_id, reason="changed their mind"))
            elif status == "paid":
                send(ShipOrder(order_id=order_id, carrier="DHL", tracking_number=f"T{n}"))
                still_open.append((order_id, total, "shipped"))
            elif status == "shipped":
                send(DeliverOrder(order_id=order_id))
            else:
                still_open.append((order_id, total, status))
        open_orders = still_open


@dataclass
class Expected:
    """Report figures folded straight from the event log, independently of the projection."""

    daily: dict[date, dict[str, int]] = field(default_factory=dict)
    skus: dict[str, dict[str, int]] = field(default_factory=dict)
    reached: Counter[str] = field(default_factory=Counter)
    current: Counter[str] = field(default_factory=Counter)
    orders: int = 0

    @classmethod
    def of(cls, batches: Iterable[list[Envelope]]) -> Expected:
        lines: dict[UUID, list[dict[str, Any]]] = {}
        seen: dict[UUID, set[str]] = defaultdict(set)
        now: dict[UUID, str] = {}
        paid: list[tuple[date, UUID, int]] = []
        owed: dict[UUID, tuple[int, int]] = defaultdict(lambda: (0, 0))  # (due, refunded)
        order_totals: dict[UUID, int] = {}
        status_of = {
            "order.created": "created",
            "order.reserved": "reserved",
            "order.paid": "paid",
            "order.shipped": "shipped",
            "order.delivered": "delivered",
            "order.cancelled": "cancelled",
            "order.expired": "expired",
            "order.failed": "failed",
        }
        for batch in batches:
            for e in batch:
                if e.type == "order.created":
                    lines[e.aggregate_id] = e.data["lines"]
                    order_totals[e.aggregate_id] = e.data["total_cents"]
                due, back = owed[e.aggregate_id]
                if e.type == "order.cancelled" and e.data["refund_due"]:
                    owed[e.aggregate_id] = (due + order_totals[e.aggregate_id], back)
                if e.type == "order.payment_unapplied":
                    owed[e.aggregate_id] = (due + e.data["amount_cents"], back)
                if e.type in ("order.refunded", "order.unapplied_payment_refunded"):
                    owed[e.aggregate_id] = (due, back + e.data["amount_cents"])
                if e.type in status_of:
                    seen[e.aggregate_id].add(status_of[e.type])
                    now[e.aggregate_id] = status_of[e.type]
                if e.type == "order.paid":
                    day = e.occurred_at.astimezone(UTC).date()
                    paid.append((day, e.aggregate_id, e.data["amount_cents"]))
        expected = cls(orders=len(lines))
        for day, order, amount in paid:
            units = sum(line["quantity"] for line in lines[order])
            totals = expected.daily.setdefault(day, {"orders": 0, "units": 0, "revenue_cents": 0})
            totals["orders"] += 1
            totals["units"] += units
            totals["revenue_cents"] += amount
            for line in lines[order]:
                sku = expected.skus.setdefault(line["sku"], {"units": 0, "revenue_cents": 0})
                sku["units"] += line["quantity"]
                sku["revenue_cents"] += line["quantity"] * line["unit_price_cents"]
        for order, statuses in seen.items():
            expected.reached.update(statuses)
            expected.current[now[order]] += 1
        for due, back in owed.values():
            expected.reached["refund_due"] += due > 0
            expected.current["refund_due"] += due > back
        return expected

    def daily_items(self, first: date | None = None, last: date | None = None) -> list[Any]:
        return [
            {"day": day, **totals}
            for day, totals in sorted(self.daily.items())
            if (first is None or day >= first) and (last is None or day <= last)
        ]


def reports(client: Client) -> dict[str, Any]:
    return {
        "daily": queries.daily_sales(client, None, None),
        "skus": queries.top_skus(client, None, None, limit=1000),
        "funnel": queries.order_funnel(client, None, None),
    }


def assert_reports_match(runner: ReportingProjector, expected: Expected) -> None:
    found = reports(runner.client)
    assert found["daily"] == expected.daily_items()
    assert {r.pop("sku"): r for r in found["skus"]} == expected.skus
    funnel = found["funnel"]
    assert funnel["orders"] == expected.orders
    reached = {i["status"]: i["reached"] for i in funnel["items"] if i["reached"]}
    assert reached == dict(expected.reached)
    current = {i["status"]: i["orders"] for i in funnel["items"] if i["orders"]}
    assert current == dict(expected.current)
    assert funnel["cancellation_rate"] == round(expected.reached["cancelled"] / expected.orders, 4)
