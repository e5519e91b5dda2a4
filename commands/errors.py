"""Errors the command layer itself raises (the ports' own errors live in commands.ports)."""

from commands.ports import ApplicationError


class SkuAlreadyRegistered(ApplicationError):
    code = "sku-exists"

    def __init__(self, sku: str) -> None:
        super().__init__(f"SKU {sku!r} is already registered")


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used before with a different request")
