"""Read-your-writes on an eventually consistent system: `min_position` waits (a bounded
time) until the read models reflect the position a command returned.

A watermark counts parked dead letters as handled, so it can pass `min_position` while an
event at or below it was never applied: such an answer says how many in
X-Projection-Dead-Letters (and counts in orderflow_reads_behind_dead_letters_total)
rather than claiming a freshness it does not have."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import anyio
from fastapi import Query, Request

from domain.base_error import OrderFlowError
from projections import dead_letters, metrics
from projections.ports import Tx
from projections.sql_projector import SqlProjector
from schemas.types import MAX_POSITION

POLL_S = 0.02
# A read without min_position may say a position read this long before it: a lower bound
# of what its rows reflect, and one statement fewer for most reads (a GET's round trips
# were most of its cost). With min_position, the position is always read afresh.
RECENT_POSITIONS_S = 0.05
DEAD_LETTERS_HEADER = "X-Projection-Dead-Letters"
FRESHNESS_HEADERS = {
    "X-Projection-Position": {
        "description": "The position of the event log the read models reflect.",
        "schema": {"type": "integer"},
    },
    DEAD_LETTERS_HEADER: {
        "description": "Only with min_position, and only when some are: how many events at "
        "or below min_position are parked as dead letters in the read models this answer "
        "comes from. The answer may not reflect them, although the position passed "
        "min_position (`orderflow dead-letters list`).",
        "schema": {"type": "integer", "minimum": 1},
    },
}


class ProjectionLag(OrderFlowError):
    code = "projection-lag"

    def __init__(self, wanted: int, reached: int) -> None:
        super().__init__(f"read models reached position {reached}, not yet {wanted}")


class PositionBeyondHead(OrderFlowError):
    code = "position-beyond-head"

    def __init__(self, wanted: int, head: int) -> None:
        super().__init__(
            f"position {wanted} is beyond the event store's head {head}: no command answered it"
        )


async def awaited(
    request: Request,
    reached_now: Callable[[], int],
    min_position: int | None,
    wait_ms: int,
) -> int:
    """The position `reached_now` answers, after waiting up to `wait_ms` for it to reach
    `min_position`: ProjectionLag when it does not. A position the event store has not
    reached is refused at once (PositionBeyondHead): waiting could not bring it."""
    deadline = time.monotonic() + wait_ms / 1000
    head_checked = False
    while True:
        reached = await anyio.to_thread.run_sync(reached_now)
        request.state.projection_position = reached
        if min_position is None or reached >= min_position:
            return reached
        if not head_checked:
            head = await anyio.to_thread.run_sync(_head, request)
            if min_position > head:
                raise PositionBeyondHead(min_position, head)
            head_checked = True
        if time.monotonic() >= deadline:
            raise ProjectionLag(min_position, reached)
        await anyio.sleep(POLL_S)


def _head(request: Request) -> int:
    return int(request.app.state.read_side.events.recorder.max_notification_id() or 0)


class RecentPositions:
    """The read models' positions as last read, and when the read began."""

    def __init__(self) -> None:
        self._seen: tuple[float, dict[str, int]] | None = None

    def read(self, runner: SqlProjector, tx: Tx) -> dict[str, int]:
        """The positions read less than RECENT_POSITIONS_S ago, else read now in `tx`."""
        seen = self._seen
        if seen is not None and time.monotonic() - seen[0] < RECENT_POSITIONS_S:
            return seen[1]
        began = time.monotonic()
        positions = runner.positions(tx)
        self._seen = (began, positions)
        return positions


MinPosition = Annotated[
    int | None,
    Query(
        ge=1,
        le=MAX_POSITION,
        description="Answer only once the read models reflect this position (a command's "
        "`position`); waits up to wait_ms, then 503 projection-lag. A position beyond the "
        "event store's head is 409 position-beyond-head at once.",
    ),
]
WaitMs = Annotated[
    int, Query(ge=0, le=10_000, description="How long to wait for min_position, in ms.")
]


def reflecting(*projections: str) -> Callable[..., Awaitable[int | None]]:
    """A dependency answering the position of the projections an endpoint reads; None
    when the read has no `min_position`: then `reading` notes the position in the
    endpoint's own thread, just before it reads (a thread hop of its own for it cost a
    fifth of the read API's CPU under load), from RecentPositions."""

    async def position(
        request: Request, min_position: MinPosition = None, wait_ms: WaitMs = 2000
    ) -> int | None:
        runner: SqlProjector = request.app.state.read_side.runner

        def lowest(positions: dict[str, int]) -> int:
            return min(positions[name] for name in projections)

        def reached_now(tx: Tx | None = None) -> int:
            return lowest(runner.positions(tx))

        if min_position is None:
            recent: RecentPositions = request.app.state.recent_positions
            request.state.reach = lambda tx: lowest(recent.read(runner, tx))
            return None
        reached = await awaited(request, reached_now, min_position, wait_ms)
        await _check_parked(request, projections, min_position)
        return reached

    return position


async def _check_parked(request: Request, projections: tuple[str, ...], position: int) -> None:
    store = request.app.state.read_side.store
    parked = await anyio.to_thread.run_sync(dead_letters.parked_up_to, store, projections, position)
    for projection in parked:
        metrics.READS_BEHIND_DEAD_LETTERS.labels(projection).inc()
    if parked:
        request.state.dead_letters_behind = sum(parked.values())


@contextmanager
def reading(request: Request) -> Iterator[Tx]:
    """The read store, in the endpoint's thread, once the position its answer reflects is
    noted (when `reflecting` left it to the read), on the same connection: before the
    read, so the position never claims more than the answer holds."""
    with request.app.state.read_side.store.read() as tx:
        if (reach := getattr(request.state, "reach", None)) is not None:
            request.state.projection_position = reach(tx)
        yield tx
