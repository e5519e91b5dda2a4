"""Liveness and readiness of the read API."""

from fastapi import Request

from infra.http.readiness import Checked, check, health_router


def readiness(request: Request) -> Checked:
    """Ready when the read store (read models), the event store (audit) and, when reports
    are configured, ClickHouse answer."""
    side = request.app.state.read_side
    positions: dict[str, int] = {}

    def read_positions() -> None:
        positions.update(side.runner.positions())

    checks = {
        "read_store": check(read_positions),
        "event_store": check(side.events.recorder.max_notification_id),
    }
    if side.reporting is not None:
        checks["clickhouse"] = check(side.reporting.position)
    return checks, {"positions": positions}


router = health_router(readiness)
