"""Errors of the read side, mapped to problem+json answers."""

from __future__ import annotations

from commands.errors import NotFound
from domain.base_error import OrderFlowError
from infra.audit.checkpoint import InvalidCheckpoint
from infra.audit.checkpoints import NoCheckpointKey
from infra.audit.queries import UnknownEventType
from infra.http.errors import COMMON_HANDLERS, ExceptionHandler, by_status, problem_responses
from projections.queries import BadCursor
from read_api.consistency import PositionBeyondHead, ProjectionLag


class BothAfterAndCheckpoint(OrderFlowError):
    code = "checkpoint-from-the-start"

    def __init__(self) -> None:
        super().__init__("a checkpoint is checked from the start of the log: drop after_position")


STATUS_BY_ERROR: dict[type[OrderFlowError], int] = {
    NotFound: 404,
    BadCursor: 400,
    ProjectionLag: 503,
    PositionBeyondHead: 409,
    UnknownEventType: 422,
    BothAfterAndCheckpoint: 422,
    InvalidCheckpoint: 422,
    NoCheckpointKey: 501,
}

HANDLERS: dict[type[Exception], ExceptionHandler] = {
    **COMMON_HANDLERS,
    **{error: by_status(STATUS_BY_ERROR) for error in STATUS_BY_ERROR},
}

PROBLEM_RESPONSES = problem_responses(
    {
        400: "A cursor this API did not give out (bad-cursor)",
        401: "No valid bearer token",
        403: "Role not allowed",
        404: "Unknown SKU, order or checkpoint",
        409: "min_position is beyond the event store's head: no command answered it "
        "(position-beyond-head), answered at once",
        422: "A parameter does not satisfy the schema (validation-error), an unknown event "
        "type, or a checkpoint that is malformed or not signed by the key",
        429: "Over ORDERFLOW_RATE_LIMIT (rate-limited), with Retry-After",
        501: "No key to check checkpoints with (ORDERFLOW_AUDIT_PUBLIC_KEY)",
        503: "Read models behind min_position after wait_ms (projection-lag), or storage "
        "down (unavailable), with Retry-After",
    }
)
