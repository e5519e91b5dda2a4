"""Read-your-writes on an eventually consistent system: `min_position` waits (a bounded
time) until the read models reflect the position a command returned."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Query, Request

from projections.runner import ProjectionRunner

POLL_S = 0.02


class ProjectionLag(Exception):
    code = "projection-lag"

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"read models reached position {reached}, not yet {wanted}")
        self.detail = str(self)


def reflecting(*projections: str) -> Callable[..., Awaitable[int]]:
    """A dependency answering the position of the projections an endpoint reads."""

    async def position(
        request: Request,
        min_position: Annotated[int | None, Query(ge=1)] = None,
        wait_ms: Annotated[int, Query(ge=0, le=10_000)] = 2000,
    ) -> int:
        runner: ProjectionRunner = request.app.state.read_side.runner
        deadline = time.monotonic() + wait_ms / 1000
        while True:
            positions = await anyio.to_thread.run_sync(runner.positions)
            reached = min(positions[name] for name in projections)
            request.state.projection_position = reached
            if min_position is None or reached >= min_position:
                return reached
            if time.monotonic() >= deadline:
                raise ProjectionLag(min_position, reached)
            await anyio.sleep(POLL_S)

    return position
