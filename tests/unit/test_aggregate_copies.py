"""A group-commit batch undoes a command from a copy of each aggregate as the batch found
it, copied one level deep (infra/eventstore/group_batch.py `copied`). That is only a true
copy if no change of the domain's aggregates reaches into an object nested inside one of
their containers. Each step of these histories is applied to an aggregate after a one-level
copy and a deep copy (the oracle) were taken of it: the one-level copy must not change."""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate

from domain.inventory import InventoryItem
from domain.order import Order, OrderLine
from infra.eventstore.group_batch import copied
from tests.aggregate_state import public_state

ORDER_A, ORDER_B = uuid4(), uuid4()
LINES: list[OrderLine] = [
    {"sku": "A", "quantity": 2, "unit_price_cents": 100},
    {"sku": "B", "quantity": 1, "unit_price_cents": 250},
]


def item_history() -> tuple[Aggregate, list[Callable[[Any], object]]]:
    item = InventoryItem(sku="A", name="a", unit_price_cents=100)
    return item, [
        lambda i: i.receive(10),
        lambda i: i.reserve(ORDER_A, 2),
        lambda i: i.reserve(ORDER_B, 3),
        lambda i: i.adjust(-1, "count"),
        lambda i: i.change_price(120),
        lambda i: i.release(ORDER_A, "cancelled"),
        lambda i: i.commit(ORDER_B),
    ]


def paid_order_history() -> tuple[Aggregate, list[Callable[[Any], object]]]:
    order = Order.place("c", [dict(line) for line in LINES])  # type: ignore[misc]
    return order, [
        lambda o: o.mark_reserved(),
        lambda o: o.record_payment_failure("declined", "p0"),
        lambda o: o.pay(o.total_cents, "p1"),
        lambda o: o.receive_payment(o.total_cents, "EUR", "p2", "ev2"),  # owed back
        lambda o: o.record_refund(o.total_cents, "r2", payment_ref="p2"),
        lambda o: o.ship("carrier", "t"),
        lambda o: o.deliver(),
    ]


def cancelled_order_history() -> tuple[Aggregate, list[Callable[[Any], object]]]:
    order = Order.place("c", [dict(line) for line in LINES])  # type: ignore[misc]
    return order, [
        lambda o: o.mark_reserved(),
        lambda o: o.pay(o.total_cents, "p1"),
        lambda o: o.cancel("changed my mind"),
        lambda o: o.record_refund(o.total_cents, "r1"),
    ]


@pytest.mark.parametrize(
    "history", [item_history, paid_order_history, cancelled_order_history], ids=lambda h: h.__name__
)
def test_no_step_of_the_domain_changes_a_one_level_copy(
    history: Callable[[], tuple[Aggregate, list[Callable[[Any], object]]]],
) -> None:
    aggregate, steps = history()
    for step in steps:
        one_level, deep = copied(aggregate), deepcopy(aggregate)  # type: ignore[type-var]
        step(aggregate)
        assert public_state(one_level) == public_state(deep)
        assert public_state(aggregate) != public_state(deep)  # the step did change it
