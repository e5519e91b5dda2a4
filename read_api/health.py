"""Liveness and readiness of the read API."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infra.http import readiness

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", response_model=None)
def ready(request: Request) -> dict[str, Any] | JSONResponse:
    """Ready when the read store (read models), the event store (audit) and, when reports
    are configured, ClickHouse answer."""
    side = request.app.state.read_side
    positions: dict[str, int] = {}

    def read_positions() -> None:
        positions.update(side.runner.positions())

    checks = {
        "read_store": readiness.check(read_positions),
        "event_store": readiness.check(side.events.recorder.max_notification_id),
    }
    if side.reporting is not None:
        checks["clickhouse"] = readiness.check(side.reporting.position)
    return readiness.answer(checks, positions=positions)
