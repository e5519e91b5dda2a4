"""Every error the write side can raise, mapped to a status and a problem+json answer."""

from __future__ import annotations

import logging
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import Request
from fastapi.responses import JSONResponse

from commands.errors import IdempotencyKeyReused
from domain.errors import DomainError, InvalidArgument
from infra.http.problems import problem
from infra.http.security import Forbidden, Unauthenticated
from infra.ports import ApplicationError, ConcurrencyConflict, NotFound, StaleVersion
from schemas.problems import FieldError, Problem
from write_api.dispatch import BadHeader

log = logging.getLogger(__name__)


class MissingField(Exception):
    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc, self.msg = loc, msg


# Looked up along the exception's class hierarchy: the most specific entry wins.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    StaleVersion: 412,
    NotFound: 404,
    IdempotencyKeyReused: 422,
    InvalidArgument: 422,
    ConcurrencyConflict: 409,
    DomainError: 409,
    ApplicationError: 409,
}


def _title(exc: Exception) -> str:
    code: str = getattr(exc, "code", "error")
    return code.replace("-", " ").capitalize()


async def rule_problem(_: Request, exc: Exception) -> JSONResponse:
    status = next(STATUS_BY_ERROR[k] for k in type(exc).__mro__ if k in STATUS_BY_ERROR)
    detail: str = getattr(exc, "detail", str(exc))
    return problem(status, getattr(exc, "code", "error"), _title(exc), detail)


async def unauthenticated(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthenticated)
    return problem(
        401,
        "unauthenticated",
        "Unauthenticated",
        exc.detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def forbidden(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Forbidden)
    return problem(403, "forbidden", "Forbidden", exc.detail)


async def bad_header(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadHeader)
    return problem(400, "bad-header", "Bad header", exc.detail)


async def missing_field(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MissingField)
    return problem(
        422,
        "validation-error",
        "Invalid request",
        exc.msg,
        [FieldError(loc=exc.loc, msg=exc.msg)],
    )


async def store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("event store unavailable: %s", exc)
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "the event store is not reachable; retry shortly",
        headers={"Retry-After": "1"},
    )


HANDLERS: dict[type[Exception], Any] = {
    DomainError: rule_problem,
    ApplicationError: rule_problem,
    Unauthenticated: unauthenticated,
    Forbidden: forbidden,
    BadHeader: bad_header,
    MissingField: missing_field,
    OperationalError: store_unavailable,
    InterfaceError: store_unavailable,
}

_PROBLEM = {"application/problem+json": {"schema": Problem.model_json_schema()}}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description, "content": _PROBLEM}
    for status, description in {
        400: "Malformed request or header",
        401: "No valid bearer token",
        403: "Role not allowed",
        404: "Unknown SKU or order",
        409: "A business rule refused the command",
        412: "If-Match names a stale version",
        413: "Body too large",
        422: "Invalid values, or an Idempotency-Key reused with another body",
        503: "Event store unavailable",
    }.items()
}
