"""Liveness and readiness, the same for both APIs: `/health` says the process answers;
`/ready` tries each dependency once and answers a 503 problem naming each one that is down.
An API says only which dependencies it has (`Readiness`)."""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infra.http.problems import problem

# an API's dependencies, each "ok" or "down: <error>", and fields to add to a ready answer
Checked = tuple[dict[str, str], dict[str, Any]]
Readiness = Callable[[Request], Checked]


def health_router(readiness: Readiness) -> APIRouter:
    """`/health` and `/ready`; the readiness function's docstring describes `/ready`."""
    router = APIRouter(tags=["health"])

    @router.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready", response_model=None, description=inspect.cleandoc(readiness.__doc__ or "")
    )
    def ready(request: Request) -> dict[str, Any] | JSONResponse:
        checks, extra = readiness(request)
        return answer(checks, **extra)

    return router


def check(probe: Callable[[], object]) -> str:
    """ "ok", or "down: <error>", after one attempt: the library retries its reads ten
    times (a retry decorator keeps the undecorated method as `__wrapped__`), too long for
    a probe."""
    once = getattr(probe, "__wrapped__", None)
    try:
        if once is not None:
            once.__get__(getattr(probe, "__self__", None))()
        else:
            probe()
    except Exception as down:
        return f"down: {type(down).__name__}"
    return "ok"


def answer(checks: dict[str, str], **extra: Any) -> dict[str, Any] | JSONResponse:
    """Ready with every check, or a 503 problem naming each dependency that is down."""
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        detail = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return problem(503, "not-ready", "Not ready", detail, headers={"Retry-After": "1"})
    return {"status": "ready", "checks": checks, **extra}


def connect_any(servers: str) -> None:
    """Returns when one of the comma-separated host:port servers accepts a TCP connection
    within a second; otherwise raises the last server's error."""
    failure: Exception = ValueError("no server")
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
                return
        except (OSError, ValueError) as down:
            failure = down
    raise failure
