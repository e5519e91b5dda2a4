"""One handler per command: load what it touches, call the aggregates, describe the result.

Handlers never commit: the bus commits their unit of work once, so the events of every
touched aggregate land in one transaction, and it fills in the `position` (left 0 here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from commands.errors import SkuAlreadyRegistered, StaleVersion, UnknownOrder
from commands.ports import UnitOfWork
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
from schemas.responses import (
    Accepted,
    ItemRegistered,
    OrderPlaced,
    OrderStatusChanged,
    PaymentSettled,
    PricedLine,
    PriceSet,
    StockLevel,
)

UNCOMMITTED = 0  # the bus replaces it with the position of the committed events

Versioned = TypeVar("Versioned", InventoryItem, Order)


def at_version(aggregate: Versioned, expected: int | None) -> Versioned:
    """If-Match: the command was decided against this version and no other."""
    if expected is not None and aggregate.version != expected:
        raise StaleVersion(expected, aggregate.version)
    return aggregate


def stock_level(item: InventoryItem) -> StockLevel:
    return StockLevel(
        sku=item.sku,
        on_hand=item.on_hand,
        reserved=item.reserved,
        available=item.available,
        version=item.version,
        position=UNCOMMITTED,
    )


def status_changed(order: Order) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order.id, status=order.status, version=order.version, position=UNCOMMITTED
    )


def register_item(cmd: RegisterItem, uow: UnitOfWork) -> ItemRegistered:
    if uow.has_item(cmd.sku):
        raise SkuAlreadyRegistered(cmd.sku)
    item = InventoryItem(sku=cmd.sku, name=cmd.name, unit_price_cents=cmd.unit_price_cents)
    if cmd.on_hand:
        item.receive(cmd.on_hand)
    uow.add(item)
    return ItemRegistered(sku=item.sku, version=item.version, position=UNCOMMITTED)


def receive_stock(cmd: ReceiveStock, uow: UnitOfWork) -> StockLevel:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.receive(cmd.quantity)
    return stock_level(item)


def adjust_stock(cmd: AdjustStock, uow: UnitOfWork) -> StockLevel:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.adjust(cmd.delta, cmd.reason)
    return stock_level(item)


def change_price(cmd: ChangePrice, uow: UnitOfWork) -> PriceSet:
    item = at_version(uow.item(cmd.sku), cmd.expected_version)
    item.change_price(cmd.unit_price_cents)
    return PriceSet(
        sku=item.sku,
        unit_price_cents=item.unit_price_cents,
        version=item.version,
        position=UNCOMMITTED,
    )


def place_order(cmd: PlaceOrder, uow: UnitOfWork) -> OrderPlaced:
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
    return OrderPlaced(
        order_id=order.id,
        customer_id=order.customer_id,
        status=order.status,
        currency=order.currency,
        total_cents=order.total_cents,
        lines=[PricedLine(**line) for line in order.lines],
        version=order.version,
        position=UNCOMMITTED,
    )


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


def pay_order(cmd: PayOrder, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.pay(cmd.amount_cents, cmd.payment_ref)
    return status_changed(order)


def ship_order(cmd: ShipOrder, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.ship(cmd.carrier, cmd.tracking_number)
    for sku in order.skus:
        uow.item(sku).commit(order.id)
    return status_changed(order)


def deliver_order(cmd: DeliverOrder, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.deliver()
    return status_changed(order)


def cancel_order(cmd: CancelOrder, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    holds_stock = order.holds_reservations
    order.cancel(cmd.reason)
    if holds_stock:
        release_all(order, uow, "cancelled")
    return status_changed(order)


def expire_order(cmd: ExpireOrder, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.expire()  # only a reserved order expires: a second worker's try is refused
    release_all(order, uow, "expired")
    return status_changed(order)


def settle_payment(cmd: SettlePayment, uow: UnitOfWork) -> PaymentSettled:
    order = _order(cmd, uow)
    applied = order.receive_payment(
        cmd.amount_cents, cmd.currency.upper(), cmd.payment_ref, cmd.provider_event_id
    )
    return PaymentSettled(
        order_id=order.id,
        status=order.status,
        version=order.version,
        position=UNCOMMITTED,
        applied=applied,
    )


def record_payment_failure(cmd: RecordPaymentFailure, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.record_payment_failure(cmd.reason, cmd.payment_ref)
    return status_changed(order)


def record_refund(cmd: RecordRefund, uow: UnitOfWork) -> OrderStatusChanged:
    order = _order(cmd, uow)
    order.record_refund(cmd.amount_cents, cmd.refund_ref, cmd.payment_ref)
    return status_changed(order)


Handler = Callable[[Any, UnitOfWork], Accepted]

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
