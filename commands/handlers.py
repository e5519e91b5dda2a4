"""One handler per command: load what it touches, call the aggregates, return the facts
of the aggregate it acted on (commands/results.py).

Handlers never commit: the bus commits their unit of work once, so the events of every
touched aggregate land in one transaction, and hands back their position beside the
result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from commands.errors import SkuAlreadyRegistered, StaleVersion, UnknownOrder
from commands.ports import UnitOfWork
from commands.results import ItemFacts, OrderFacts, PaymentReceived, Result
from domain.inventory import InventoryItem
from domain.order import Order, ShippingAddress, priced_line
from schemas.commands import (
    AdjustStock,
    CancelOrder,
    ChangePrice,
    Command,
    DeliverOrder,
    ExpireOrder,
    OrderCommand,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RecordPaymentFailure,
    RecordRefund,
    RegisterItem,
    SettlePayment,
    ShipOrder,
)

Versioned = TypeVar("Versioned", InventoryItem, Order)


def at_version(aggregate: Versioned, expected: int | None) -> Versioned:
    """If-Match: the command was decided against this version and no other."""
    if expected is not None and aggregate.version != expected:
        raise StaleVersion(expected, aggregate.version)
    return aggregate


def register_item(cmd: RegisterItem, uow: UnitOfWork) -> ItemFacts:
    if uow.has_item(cmd.sku):
        raise SkuAlreadyRegistered(cmd.sku)
    item = InventoryItem(sku=cmd.sku, name=cmd.name, unit_price_cents=cmd.unit_price_cents)
    if cmd.on_hand:
        item.receive(cmd.on_hand)
    uow.add(item)
    return ItemFacts.of(item)


def receive_stock(cmd: ReceiveStock, uow: UnitOfWork) -> ItemFacts:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.receive(cmd.quantity)
    return ItemFacts.of(item)


def adjust_stock(cmd: AdjustStock, uow: UnitOfWork) -> ItemFacts:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.adjust(cmd.delta, cmd.reason)
    return ItemFacts.of(item)


def change_price(cmd: ChangePrice, uow: UnitOfWork) -> ItemFacts:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.change_price(cmd.unit_price_cents)
    return ItemFacts.of(item)


def place_order(cmd: PlaceOrder, uow: UnitOfWork) -> OrderFacts:
    items = [uow.item(line.sku) for line in cmd.lines]  # raises UnknownSku
    lines = [
        priced_line(line.sku, line.quantity, item.unit_price_cents)
        for line, item in zip(cmd.lines, items, strict=True)
    ]
    order = Order.place(cmd.customer_id, lines, cmd.currency, _address(cmd))
    for line, item in zip(cmd.lines, items, strict=True):
        item.reserve(order.id, line.quantity)  # raises InsufficientStock: nothing is saved
    order.mark_reserved()
    uow.add(order)
    return OrderFacts.of(order)


def _address(cmd: PlaceOrder) -> ShippingAddress | None:
    a = cmd.shipping_address
    if a is None:
        return None
    return ShippingAddress(
        recipient=a.recipient,
        line1=a.line1,
        line2=a.line2,
        postal_code=a.postal_code,
        city=a.city,
        country=a.country,
    )


def release_all(order: Order, uow: UnitOfWork, reason: str) -> None:
    for sku in order.skus:
        uow.item(sku).release(order.id, reason=reason)


def _order(cmd: OrderCommand, uow: UnitOfWork) -> Order:
    order = uow.order(cmd.order_id)
    if cmd.acting_customer is not None and order.customer_id != cmd.acting_customer:
        raise UnknownOrder(cmd.order_id)  # another customer's order does not exist for you
    return at_version(order, cmd.expected_version)


def pay_order(cmd: PayOrder, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.pay(cmd.amount_cents, cmd.payment_ref)
    return OrderFacts.of(order)


def ship_order(cmd: ShipOrder, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.ship(cmd.carrier, cmd.tracking_number)
    for sku in order.skus:
        uow.item(sku).commit(order.id)
    return OrderFacts.of(order)


def deliver_order(cmd: DeliverOrder, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.deliver()
    return OrderFacts.of(order)


def cancel_order(cmd: CancelOrder, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    holds_stock = order.holds_reservations
    order.cancel(cmd.reason)
    if holds_stock:
        release_all(order, uow, "cancelled")
    return OrderFacts.of(order)


def expire_order(cmd: ExpireOrder, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.expire()  # only a reserved order expires: a second worker's try is refused
    release_all(order, uow, "expired")
    return OrderFacts.of(order)


def settle_payment(cmd: SettlePayment, uow: UnitOfWork) -> PaymentReceived:
    order = _order(cmd, uow)
    applied = order.receive_payment(
        cmd.amount_cents, cmd.currency.upper(), cmd.payment_ref, cmd.provider_event_id
    )
    return PaymentReceived.on(order, applied)


def record_payment_failure(cmd: RecordPaymentFailure, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.record_payment_failure(cmd.reason, cmd.payment_ref)
    return OrderFacts.of(order)


def record_refund(cmd: RecordRefund, uow: UnitOfWork) -> OrderFacts:
    order = _order(cmd, uow)
    order.record_refund(cmd.amount_cents, cmd.refund_ref, cmd.payment_ref)
    return OrderFacts.of(order)


Handler = Callable[[Any, UnitOfWork], Result]

HANDLERS: dict[type[Command], Handler] = {
    RegisterItem: register_item,
    ReceiveStock: receive_stock,
    AdjustStock: adjust_stock,
    ChangePrice: change_price,
    PlaceOrder: place_order,
    PayOrder: pay_order,
    ShipOrder: ship_order,
    DeliverOrder: deliver_order,
    CancelOrder: cancel_order,
    ExpireOrder: expire_order,
    SettlePayment: settle_payment,
    RecordPaymentFailure: record_payment_failure,
    RecordRefund: record_refund,
}
