"""Errors of the command layer: what a command may be refused for besides a domain rule."""

from __future__ import annotations

from uuid import UUID

from domain.base_error import OrderFlowError


class ApplicationError(OrderFlowError):
    code = "application-error"


class NotFound(ApplicationError):
    code = "not-found"


class UnknownSku(NotFound):
    code = "unknown-sku"

    def __init__(self, sku: str) -> None:
        super().__init__(f"no inventory item with SKU {sku!r}")
        self.sku = sku


class UnknownOrder(NotFound):
    code = "unknown-order"

    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"no order {order_id}")
        self.order_id = order_id


class StaleVersion(ApplicationError):
    code = "stale-version"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"If-Match expected version {expected}, the current version is {actual}")
        self.expected, self.actual = expected, actual


class ConcurrencyConflict(ApplicationError):
    """Another command changed the same aggregate first. The bus retries; it surfaces
    only when the retries run out."""

    code = "concurrency-conflict"


class SkuAlreadyRegistered(ApplicationError):
    code = "sku-exists"

    def __init__(self, sku: str) -> None:
        super().__init__(f"SKU {sku!r} is already registered")


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used before with a different request")
