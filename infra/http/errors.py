"""Exception handlers both APIs use; each API adds its own status table."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import Request
from fastapi.responses import JSONResponse
from psycopg import OperationalError as PsycopgOperationalError
from psycopg_pool import PoolTimeout

from domain.base_error import OrderFlowError
from infra.http.identity import IdentityProviderUnavailable
from infra.http.problems import PROBLEM_JSON, PROBLEM_REF, problem
from infra.http.security import Forbidden, Unauthenticated

log = logging.getLogger(__name__)
ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _title(code: str) -> str:
    return code.replace("-", " ").capitalize()


def by_status(statuses: Mapping[type[OrderFlowError], int]) -> ExceptionHandler:
    """Answers an error with the status of its most specific class in the table; the
    error's `code` names the problem type and its `detail` explains it."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OrderFlowError)
        status = next(statuses[k] for k in type(exc).__mro__ if k in statuses)
        headers = {"Retry-After": "1"} if status == 503 else None
        return problem(status, exc.code, _title(exc.code), exc.detail, headers=headers)

    return handle


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


async def store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("storage unavailable: %s", exc)
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        "a database is not reachable; retry shortly",
        headers={"Retry-After": "1"},
    )


async def identity_provider_unavailable(_: Request, exc: Exception) -> JSONResponse:
    log.warning("identity provider unavailable: %s", exc)
    return problem(
        503,
        "identity-provider-unavailable",
        "Service unavailable",
        "the identity provider's keys could not be fetched to check the token; retry shortly",
        headers={"Retry-After": "5"},
    )


COMMON_HANDLERS: dict[type[Exception], ExceptionHandler] = {
    Unauthenticated: unauthenticated,
    IdentityProviderUnavailable: identity_provider_unavailable,
    Forbidden: forbidden,
    OperationalError: store_unavailable,
    InterfaceError: store_unavailable,
    PsycopgOperationalError: store_unavailable,
    PoolTimeout: store_unavailable,
}


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries saying which statuses answer with problem+json, and why."""
    content = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    return {status: {"description": d, "content": content} for status, d in descriptions.items()}
