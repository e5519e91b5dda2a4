"""Every error answer is application/problem+json (RFC 9457), built here and only here."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from schemas.problems import FieldError, Problem

PROBLEM_JSON = "application/problem+json"
_COMPONENT = "#/components/schemas/{model}"
PROBLEM_REF = _COMPONENT.format(model="Problem")
log = logging.getLogger(__name__)


def problem_type(code: str) -> str:
    return f"/problems/{code}"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=problem_type(code),
        title=title,
        status=status,
        detail=detail,
        errors=list(errors) if errors is not None else None,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(loc=[str(p) if not isinstance(p, int) else p for p in e["loc"]], msg=e["msg"])
        for e in exc.errors()
    ]


async def _validation_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return problem(400, "malformed-request", "Malformed request", "the body is not valid JSON")
    return problem(
        422,
        "validation-error",
        "Invalid request",
        "the request does not satisfy the schema",
        _field_errors(exc),
    )


async def _http_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
    return problem(
        exc.status_code,
        "http-error",
        titles.get(exc.status_code, "HTTP error"),
        str(exc.detail),
        headers=headers,
    )


def _allowed(request: Request) -> list[str]:
    """Every method the description documents at this path (the router's own 405 names
    only the first route it matched: a path with GET and POST would say GET alone)."""
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), request.url.path):
            methods.update(m.upper() for m in operations if m.upper() in _METHODS)
    return sorted(methods)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


async def _internal_problem(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(
        500, "internal-error", "Internal error", "the server failed to answer; the error is logged"
    )


def install_problem_handlers(app: FastAPI, handlers: Mapping[type[Exception], Any]) -> None:
    """Framework errors plus the app's own mapping, most specific class first; anything
    unforeseen is a 500 problem, never a bare text page."""
    _document_problems(app)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(HTTPException, _http_problem)
    app.add_exception_handler(Exception, _internal_problem)
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)


def _document_problems(app: FastAPI) -> None:
    """Puts Problem and the models it nests into the OpenAPI components, where every
    error response's `$ref` points: a self-contained description, which client
    generators and fuzzers can resolve."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        problem_schema = Problem.model_json_schema(ref_template=_COMPONENT)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        # FastAPI documents its own 422 body; ours is a problem like every other error
        for operation in _operations(schema):
            if "422" in operation.get("responses", {}):
                operation["responses"]["422"]["content"] = {
                    PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}
                }
        for default in ("HTTPValidationError", "ValidationError"):
            components.pop(default, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for path in schema.get("paths", {}).values()
        for operation in path.values()
        if isinstance(operation, dict) and "responses" in operation
    ]
