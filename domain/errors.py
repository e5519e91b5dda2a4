"""Domain errors: a broken business rule, named for the rule, free of HTTP."""

from __future__ import annotations

from uuid import UUID

from domain.base_error import OrderFlowError


class DomainError(OrderFlowError):
    """A command was refused by an aggregate; nothing was changed."""

    code = "domain-rule"


class InvalidArgument(DomainError):
    """The command is well formed but its values make no sense for the domain."""

    code = "invalid-argument"


class InsufficientStock(DomainError):
    code = "insufficient-stock"

    def __init__(self, sku: str, requested: int, available: int) -> None:
        super().__init__(f"SKU {sku!r}: requested {requested}, available {available}")
        self.sku, self.requested, self.available = sku, requested, available


class StockAdjustmentRefused(DomainError):
    code = "stock-adjustment-refused"


class InvalidTransition(DomainError):
    code = "invalid-transition"

    def __init__(self, order_id: UUID, status: str, action: str) -> None:
        super().__init__(f"order {order_id} is {status}: cannot {action}")
        self.order_id, self.status, self.action = order_id, status, action


class PaymentAlreadyRecorded(DomainError):
    """The provider reports a payment this order already holds (it paid the order, or it
    is recorded as owed back): nothing new to record."""

    code = "payment-already-recorded"

    def __init__(self, payment_ref: str) -> None:
        super().__init__(f"payment {payment_ref!r} is already recorded on this order")
        self.payment_ref = payment_ref


class DuplicateLine(DomainError):
    """Two lines of one order name the same SKU: refused as a rule of orders (409), since
    no schema can say "unique by SKU" of a list of lines."""

    code = "duplicate-sku"


class PaymentAmountMismatch(DomainError):
    """A rule about this order's state (its total), not a malformed value: 409."""

    code = "payment-amount-mismatch"

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"payment of {received} cents does not match the total {expected}")
        self.expected, self.received = expected, received
