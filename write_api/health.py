"""Liveness and readiness."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infra.http.problems import problem

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=None)
def ready(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        request.app.state.write_side.app.recorder.max_notification_id()
    except Exception as down:
        return problem(
            503,
            "not-ready",
            "Not ready",
            f"event store: {type(down).__name__}",
            headers={"Retry-After": "1"},
        )
    return {"status": "ready", "checks": {"event_store": "ok"}}
