"""Liveness and readiness."""

import socket
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infra.http.problems import problem

router = APIRouter(tags=["health"])


def _once(check: Callable[[], object]) -> object:
    """One attempt: the library retries its reads ten times, too long for a probe."""
    return getattr(check, "__wrapped__", check).__get__(getattr(check, "__self__", None))()


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


def _kafka(servers: str) -> str:
    """Says "ok" when a bootstrap server accepts a TCP connection within a second."""
    failure = "no bootstrap server"
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
                return "ok"
        except (OSError, ValueError) as down:
            failure = type(down).__name__
    return f"down: {failure}"


@router.get("/ready", response_model=None)
def ready(request: Request) -> dict[str, Any] | JSONResponse:
    """Ready when the event store answers (and Kafka accepts connections, if configured);
    a 503 problem names each dependency that is down."""
    side = request.app.state.write_side
    checks: dict[str, str] = {}
    try:
        _once(side.app.recorder.max_notification_id)
        checks["event_store"] = "ok"
    except Exception as down:
        checks["event_store"] = f"down: {type(down).__name__}"
    if side.settings.kafka_bootstrap_servers:
        checks["kafka"] = _kafka(side.settings.kafka_bootstrap_servers)
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        detail = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return problem(503, "not-ready", "Not ready", detail, headers={"Retry-After": "1"})
    return {"status": "ready", "checks": checks}
