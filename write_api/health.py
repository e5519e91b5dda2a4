"""Liveness and readiness of the write API."""

from functools import partial

from fastapi import Request

from infra.http.readiness import Checked, check, connect_any, health_router


def readiness(request: Request) -> Checked:
    """Ready when the event store answers (and Kafka accepts connections, if configured);
    a 503 problem names each dependency that is down."""
    side = request.app.state.write_side
    checks = {"event_store": check(side.app.recorder.max_notification_id)}
    if side.settings.kafka_bootstrap_servers:
        checks["kafka"] = check(partial(connect_any, side.settings.kafka_bootstrap_servers))
    return checks, {}


router = health_router(readiness)
