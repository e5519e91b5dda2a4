"""An order and its lifecycle, from placement to delivery or an end on the way."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, TypedDict

from eventsourcing.domain import Aggregate, event
from eventsourcing.domain import Snapshot as LibrarySnapshot

from domain.errors import (
    DuplicateLine,
    InvalidArgument,
    InvalidTransition,
    PaymentAlreadyRecorded,
    PaymentAmountMismatch,
)
from domain.personal import PersonalData
from domain.topics import register_event_topics
from domain.versions import declare_versions


class OrderStatus(StrEnum):
    CREATED = "created"
    RESERVED = "reserved"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"


CANCELLABLE = frozenset({OrderStatus.CREATED, OrderStatus.RESERVED, OrderStatus.PAID})


class OrderLine(TypedDict):
    sku: str
    quantity: int
    unit_price_cents: int


def priced_line(sku: str, quantity: int, unit_price_cents: int) -> OrderLine:
    return OrderLine(sku=sku, quantity=quantity, unit_price_cents=unit_price_cents)


class ShippingAddress(TypedDict):
    recipient: str
    line1: str
    line2: str | None
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2


class Order(Aggregate):
    # Version of the state snapshots record: 2 added shipping_address, 3 the payments
    # recorded as owed back.
    class_version = 3
    # Stored encrypted with the customer's key: forgetting the customer destroys the key.
    personal_data: ClassVar[PersonalData] = PersonalData(
        subject="customer_id", fields=("shipping_address",)
    )

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before shipping addresses; its status was stored as text."""
        state["shipping_address"] = None
        state["status"] = OrderStatus(state["status"])

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot taken before payments were recorded as owed back: none were."""
        state["unapplied_payments"] = {}

    class Snapshot(LibrarySnapshot):
        """JSON keeps the status's value but not its class: restored when loaded."""

        def mutate(self, _: None) -> Order:
            order = super().mutate(_)
            assert isinstance(order, Order)
            order.status = OrderStatus(order.status)
            return order

    @event("order.created")  # version 2 (see the end of this module)
    def __init__(
        self,
        customer_id: str,
        lines: list[OrderLine],
        currency: str,
        total_cents: int,
        shipping_address: ShippingAddress | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.lines = lines
        self.currency = currency
        self.total_cents = total_cents
        self.shipping_address = shipping_address
        self.status = OrderStatus.CREATED
        self.payment_ref: str | None = None
        self.payment_failures = 0
        self.refund_due = False
        self.unapplied_payments: dict[str, int] = {}  # payment_ref -> cents owed back

    @classmethod
    def place(
        cls,
        customer_id: str,
        lines: list[OrderLine],
        currency: str = "EUR",
        shipping_address: ShippingAddress | None = None,
    ) -> Order:
        if not lines:
            raise InvalidArgument("an order needs at least one line")
        skus = [line["sku"] for line in lines]
        if len(set(skus)) != len(skus):
            raise DuplicateLine("each SKU may appear on one line only")
        for line in lines:
            if line["quantity"] <= 0:
                raise InvalidArgument(f"quantity of {line['sku']!r} must be positive")
        total = sum(line["quantity"] * line["unit_price_cents"] for line in lines)
        return cls(
            customer_id=customer_id,
            lines=lines,
            currency=currency,
            total_cents=total,
            shipping_address=shipping_address,
        )

    @property
    def skus(self) -> list[str]:
        return [line["sku"] for line in self.lines]

    def _require(self, action: str, *allowed: OrderStatus) -> None:
        if self.status not in allowed:
            raise InvalidTransition(self.id, self.status, action)

    def mark_reserved(self) -> None:
        self._require("reserve", OrderStatus.CREATED)
        self._reserved()

    def fail(self, reason: str) -> None:
        self._require("fail", OrderStatus.CREATED)
        self._failed(reason)

    def pay(self, amount_cents: int, payment_ref: str) -> None:
        self._require("pay", OrderStatus.RESERVED)
        if amount_cents != self.total_cents:
            raise PaymentAmountMismatch(expected=self.total_cents, received=amount_cents)
        self._paid(amount_cents, payment_ref)

    def receive_payment(
        self, amount_cents: int, currency: str, payment_ref: str, provider_event_id: str
    ) -> bool:
        """The provider took this money for the order. It pays the order when it can;
        otherwise it is recorded as owed back (order.payment_unapplied), never dropped.
        True when it paid the order."""
        if payment_ref == self.payment_ref or payment_ref in self.unapplied_payments:
            raise PaymentAlreadyRecorded(payment_ref)
        reason = self._why_unapplicable(amount_cents, currency)
        if reason is None:
            self._paid(amount_cents, payment_ref)
            return True
        self._payment_unapplied(
            amount_cents, currency, payment_ref, provider_event_id, reason, self.status.value
        )
        return False

    def _why_unapplicable(self, amount_cents: int, currency: str) -> str | None:
        if self.status == OrderStatus.PAID or self.payment_ref is not None:
            return f"the order is {self.status} and was paid by {self.payment_ref}"
        if self.status != OrderStatus.RESERVED:
            return f"the order is {self.status}"
        if currency != self.currency or amount_cents != self.total_cents:
            return (
                f"provider reported {amount_cents} {currency}, "
                f"the order is {self.total_cents} {self.currency}"
            )
        return None

    def record_payment_failure(self, reason: str, payment_ref: str) -> None:
        self._require("record a failed payment", OrderStatus.RESERVED)
        self._payment_failed(reason, payment_ref)

    def ship(self, carrier: str, tracking_number: str) -> None:
        self._require("ship", OrderStatus.PAID)
        self._shipped(carrier, tracking_number)

    def deliver(self) -> None:
        self._require("deliver", OrderStatus.SHIPPED)
        self._delivered()

    def cancel(self, reason: str) -> None:
        self._require("cancel", *CANCELLABLE)
        self._cancelled(reason, self.status == OrderStatus.PAID)

    def expire(self) -> None:
        self._require("expire", OrderStatus.RESERVED)
        self._expired()

    def record_refund(
        self, amount_cents: int, refund_ref: str, payment_ref: str | None = None
    ) -> None:
        """A provider refunded a payment recorded as owed back, or the payment of a
        cancelled, paid order: that refund is no longer due."""
        if payment_ref is not None and payment_ref in self.unapplied_payments:
            owed = self.unapplied_payments[payment_ref]
            if amount_cents != owed:
                raise PaymentAmountMismatch(expected=owed, received=amount_cents)
            self._unapplied_payment_refunded(
                amount_cents, payment_ref, refund_ref, self.status.value
            )
            return
        self._require("record a refund", OrderStatus.CANCELLED)
        if not self.refund_due:
            raise InvalidArgument(f"order {self.id} owes no refund")
        if amount_cents != self.total_cents:
            raise PaymentAmountMismatch(expected=self.total_cents, received=amount_cents)
        self._refunded(amount_cents, refund_ref)

    @property
    def holds_reservations(self) -> bool:
        """Stock is held for this order until it ships or ends."""
        return self.status in (OrderStatus.RESERVED, OrderStatus.PAID)

    @event("order.reserved")
    def _reserved(self) -> None:
        self.status = OrderStatus.RESERVED

    @event("order.failed")
    def _failed(self, reason: str) -> None:
        self.status = OrderStatus.FAILED

    @event("order.paid")
    def _paid(self, amount_cents: int, payment_ref: str) -> None:
        self.status = OrderStatus.PAID
        self.payment_ref = payment_ref

    @event("order.payment_failed")
    def _payment_failed(self, reason: str, payment_ref: str) -> None:
        self.payment_failures += 1

    @event("order.payment_unapplied")
    def _payment_unapplied(
        self,
        amount_cents: int,
        currency: str,
        payment_ref: str,
        provider_event_id: str,
        reason: str,
        order_status: str,
    ) -> None:
        """Money received that the order cannot take: owed back, the order unchanged."""
        self.unapplied_payments = {**self.unapplied_payments, payment_ref: amount_cents}

    @event("order.unapplied_payment_refunded")
    def _unapplied_payment_refunded(
        self, amount_cents: int, payment_ref: str, refund_ref: str, order_status: str
    ) -> None:
        self.unapplied_payments = {
            ref: cents for ref, cents in self.unapplied_payments.items() if ref != payment_ref
        }

    @event("order.shipped")
    def _shipped(self, carrier: str, tracking_number: str) -> None:
        self.status = OrderStatus.SHIPPED

    @event("order.delivered")
    def _delivered(self) -> None:
        self.status = OrderStatus.DELIVERED

    @event("order.cancelled")
    def _cancelled(self, reason: str, refund_due: bool) -> None:
        self.status = OrderStatus.CANCELLED
        self.refund_due = refund_due

    @event("order.expired")
    def _expired(self) -> None:
        self.status = OrderStatus.EXPIRED

    @event("order.refunded")
    def _refunded(self, amount_cents: int, refund_ref: str) -> None:
        self.refund_due = False


def _created_v1_to_v2(state: dict[str, Any]) -> None:
    """order.created v1 predates shipping addresses: those orders have none on record."""
    state["shipping_address"] = None


declare_versions(Order, "order.created", _created_v1_to_v2)
register_event_topics(Order)
