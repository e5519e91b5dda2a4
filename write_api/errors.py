"""Every error the write side can raise, mapped to a status and a problem+json answer."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from commands.errors import (
    ApplicationError,
    ConcurrencyConflict,
    IdempotencyKeyReused,
    NotFound,
    StaleVersion,
)
from domain.base_error import OrderFlowError
from domain.errors import DomainError, InvalidArgument
from infra.http.errors import COMMON_HANDLERS, ExceptionHandler, by_status, problem_responses
from infra.http.problems import problem
from infra.http.webhook_signature import BadSignature
from schemas.problems import FieldError
from write_api.dispatch import BadHeader


class ProviderShouldRetry(OrderFlowError):
    """A webhook could not be handled for a passing reason: 503, so the provider delivers
    the event again (it keeps the event until a 2xx). Its code is the passing error's."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class MissingField(OrderFlowError):
    code = "validation-error"

    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc


# Looked up along the exception's class hierarchy: the most specific entry wins.
STATUS_BY_ERROR: dict[type[OrderFlowError], int] = {
    StaleVersion: 412,
    NotFound: 404,
    IdempotencyKeyReused: 422,
    InvalidArgument: 422,
    ConcurrencyConflict: 409,
    DomainError: 409,
    ApplicationError: 409,
}


async def bad_signature(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadSignature)
    return problem(400, exc.code, "Bad webhook", exc.detail)


async def provider_should_retry(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProviderShouldRetry)
    return problem(503, exc.code, "Deliver again", exc.detail, headers={"Retry-After": "1"})


async def bad_header(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadHeader)
    return problem(400, exc.code, "Bad header", exc.detail)


async def missing_field(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MissingField)
    return problem(
        422, exc.code, "Invalid request", exc.detail, [FieldError(loc=exc.loc, msg=exc.detail)]
    )


HANDLERS: dict[type[Exception], ExceptionHandler] = {
    **COMMON_HANDLERS,
    DomainError: by_status(STATUS_BY_ERROR),
    ApplicationError: by_status(STATUS_BY_ERROR),
    BadHeader: bad_header,
    BadSignature: bad_signature,
    ProviderShouldRetry: provider_should_retry,
    MissingField: missing_field,
}

PROBLEM_RESPONSES = problem_responses(
    {
        400: "Malformed JSON (malformed-request) or a malformed If-Match or "
        "Idempotency-Key header (bad-header)",
        401: "No valid bearer token",
        403: "Role not allowed, or a customer acting for another customer",
        404: "Unknown SKU or order (another customer's order, for a customer)",
        409: "A business rule refused the command (insufficient-stock, invalid-transition, "
        "sku-exists, stock-adjustment-refused, duplicate-sku, payment-amount-mismatch) or "
        "concurrent writers collided too often (concurrency-conflict)",
        412: "If-Match names a stale version (stale-version)",
        413: "Body over ORDERFLOW_MAX_BODY_BYTES (payload-too-large)",
        422: "Invalid values (validation-error, e.g. customer_id missing for staff), or an "
        "Idempotency-Key reused with another body",
        429: "Over ORDERFLOW_RATE_LIMIT (rate-limited), with Retry-After",
        503: "Event store unavailable (unavailable), with Retry-After; for webhooks also "
        "conflicts that outlasted the retries",
    }
)
