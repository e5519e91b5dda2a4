"""Liveness and readiness."""

import socket
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from infra.http import readiness

router = APIRouter(tags=["health"])


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
    checks = {"event_store": readiness.check(side.app.recorder.max_notification_id)}
    if side.settings.kafka_bootstrap_servers:
        checks["kafka"] = _kafka(side.settings.kafka_bootstrap_servers)
    return readiness.answer(checks)
