"""Liveness and readiness of the read API."""

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
        positions = request.app.state.read_side.runner.positions()
    except Exception as down:
        return problem(
            503,
            "not-ready",
            "Not ready",
            f"read store: {type(down).__name__}",
            headers={"Retry-After": "1"},
        )
    return {"status": "ready", "checks": {"read_store": "ok"}, "positions": positions}
