"""Liveness and readiness of the read API."""

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


@router.get("/ready", response_model=None)
def ready(request: Request) -> dict[str, Any] | JSONResponse:
    """Ready when the read store (read models) and the event store (audit) answer."""
    side = request.app.state.read_side
    checks: dict[str, str] = {}
    positions: dict[str, int] = {}
    try:
        positions = side.runner.positions()
        checks["read_store"] = "ok"
    except Exception as down:
        checks["read_store"] = f"down: {type(down).__name__}"
    try:
        _once(side.events.recorder.max_notification_id)
        checks["event_store"] = "ok"
    except Exception as down:
        checks["event_store"] = f"down: {type(down).__name__}"
    failing = [name for name, state in checks.items() if state != "ok"]
    if failing:
        detail = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return problem(503, "not-ready", "Not ready", detail, headers={"Retry-After": "1"})
    return {"status": "ready", "checks": checks, "positions": positions}
