from collections.abc import Callable

import pytest

from domain.errors import DuplicateLine, InvalidArgument, InvalidTransition, PaymentAmountMismatch
from domain.order import Order, OrderStatus, priced_line


def placed() -> Order:
    return Order.place("c-1", [priced_line("KB-1", 2, 1000), priced_line("MS-2", 1, 500)])


def in_status(status: OrderStatus) -> Order:
    order = placed()
    steps: dict[OrderStatus, list[Callable[[Order], None]]] = {
        OrderStatus.CREATED: [],
        OrderStatus.RESERVED: [Order.mark_reserved],
        OrderStatus.PAID: [Order.mark_reserved, lambda o: o.pay(2500, "p-1")],
        OrderStatus.SHIPPED: [
            Order.mark_reserved,
            lambda o: o.pay(2500, "p-1"),
            lambda o: o.ship("DHL", "T1"),
        ],
        OrderStatus.DELIVERED: [
            Order.mark_reserved,
            lambda o: o.pay(2500, "p-1"),
            lambda o: o.ship("DHL", "T1"),
            Order.deliver,
        ],
        OrderStatus.CANCELLED: [lambda o: o.cancel("no")],
        OrderStatus.EXPIRED: [Order.mark_reserved, Order.expire],
        OrderStatus.FAILED: [lambda o: o.fail("no stock")],
    }
    for step in steps[status]:
        step(order)
    assert order.status == status
    return order


def test_placing_prices_the_order_from_its_lines() -> None:
    order = placed()
    assert order.status == OrderStatus.CREATED
    assert order.total_cents == 2 * 1000 + 500
    assert [type(e).__name__ for e in order.collect_events()] == ["order.created"]


def test_an_order_without_lines_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        Order.place("c-1", [])


def test_an_order_naming_a_sku_twice_is_refused() -> None:
    with pytest.raises(DuplicateLine):
        Order.place("c-1", [priced_line("A", 1, 1), priced_line("A", 2, 1)])


def test_the_happy_path_reaches_delivered() -> None:
    order = in_status(OrderStatus.DELIVERED)
    assert [type(e).__name__ for e in order.collect_events()] == [
        "order.created",
        "order.reserved",
        "order.paid",
        "order.shipped",
        "order.delivered",
    ]


def test_a_payment_must_match_the_total() -> None:
    order = in_status(OrderStatus.RESERVED)
    with pytest.raises(PaymentAmountMismatch):
        order.pay(2499, "p-1")
    assert order.status == OrderStatus.RESERVED


def test_a_failed_payment_keeps_the_order_reserved() -> None:
    order = in_status(OrderStatus.RESERVED)
    order.record_payment_failure("card declined", "p-1")
    assert (order.status, order.payment_failures) == (OrderStatus.RESERVED, 1)


def test_cancelling_a_paid_order_makes_a_refund_due() -> None:
    order = in_status(OrderStatus.PAID)
    order.cancel("customer asked")
    assert (order.status, order.refund_due) == (OrderStatus.CANCELLED, True)


def test_cancelling_a_reserved_order_owes_nothing() -> None:
    order = in_status(OrderStatus.RESERVED)
    order.cancel("customer asked")
    assert (order.status, order.refund_due) == (OrderStatus.CANCELLED, False)


ACTIONS: dict[str, Callable[[Order], None]] = {
    "reserve": Order.mark_reserved,
    "fail": lambda o: o.fail("x"),
    "pay": lambda o: o.pay(o.total_cents, "p"),
    "payment_failed": lambda o: o.record_payment_failure("x", "p"),
    "ship": lambda o: o.ship("DHL", "T"),
    "deliver": Order.deliver,
    "cancel": lambda o: o.cancel("x"),
    "expire": Order.expire,
}
ALLOWED: dict[OrderStatus, set[str]] = {
    OrderStatus.CREATED: {"reserve", "fail", "cancel"},
    OrderStatus.RESERVED: {"pay", "payment_failed", "cancel", "expire"},
    OrderStatus.PAID: {"ship", "cancel"},
    OrderStatus.SHIPPED: {"deliver"},
    OrderStatus.DELIVERED: set(),
    OrderStatus.CANCELLED: set(),
    OrderStatus.EXPIRED: set(),
    OrderStatus.FAILED: set(),
}
REFUSED = [(s, a) for s in OrderStatus for a in ACTIONS if a not in ALLOWED[s]]


@pytest.mark.parametrize(("status", "action"), REFUSED, ids=[f"{s}-{a}" for s, a in REFUSED])
def test_illegal_transitions_are_refused_and_change_nothing(
    status: OrderStatus, action: str
) -> None:
    order = in_status(status)
    version = order.version
    with pytest.raises(InvalidTransition):
        ACTIONS[action](order)
    assert (order.status, order.version) == (status, version)


ALLOWED_PAIRS = [(s, a) for s in OrderStatus for a in sorted(ALLOWED[s])]


@pytest.mark.parametrize(
    ("status", "action"), ALLOWED_PAIRS, ids=[f"{s}-{a}" for s, a in ALLOWED_PAIRS]
)
def test_legal_transitions_append_one_event(status: OrderStatus, action: str) -> None:
    order = in_status(status)
    version = order.version
    ACTIONS[action](order)
    assert order.version == version + 1
