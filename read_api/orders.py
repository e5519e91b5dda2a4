"""Orders as the read models hold them."""

from collections.abc import Callable
from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from commands.errors import UnknownOrder
from domain.order import OrderStatus
from infra.http.security import Forbidden, require
from projections import queries
from projections.ports import ReadStore, Row
from projections.sql_projector import SqlProjector
from read_api.arrivals import MOST_WAIT_S, Arrivals, wait_preference
from read_api.consistency import FRESHNESS_HEADERS, RecentPositions, reading, reflecting
from read_api.errors import PROBLEM_RESPONSES
from schemas.auth import Principal, Role
from schemas.reads import OrderPage, OrderView
from schemas.types import CustomerId

router = APIRouter(
    prefix="/orders",
    tags=["orders"],
    responses={**PROBLEM_RESPONSES, 200: {"headers": FRESHNESS_HEADERS}},
)
readers = require(Role.CUSTOMER, Role.OPERATOR, Role.AUDITOR)


Prefer = Annotated[
    list[str] | None,
    Header(
        description="`wait=N` (RFC 7240): when the order is not in the read models yet, "
        f"wait up to N seconds (at most {MOST_WAIT_S}) for it to arrive rather than answer "
        "404 at once; the answer then says `Preference-Applied: wait=N`. For a client that "
        "would otherwise poll for the order it just placed."
    ),
]
Arrival = tuple[int, Row]  # an order, and the position read before it
PREFERENCE_APPLIED = {
    "Preference-Applied": {
        "description": "`wait=N` when the read waited for the order (Prefer: wait=N).",
        "schema": {"type": "string"},
    }
}


@router.get(
    "/{order_id}",
    response_model=OrderView,
    responses={200: {"headers": {**FRESHNESS_HEADERS, **PREFERENCE_APPLIED}}},
)
async def get_order(
    order_id: UUID,
    request: Request,
    response: Response,
    prefer: Prefer = None,
    who: Principal = Depends(readers),
    _: int | None = Depends(reflecting("orders")),
) -> OrderView:
    seconds = wait_preference(prefer or [])
    arrivals: Arrivals[Arrival] = request.app.state.arrivals
    arrival: Arrival | None = None
    found: Row | None
    if seconds and not arrivals.full:
        # no read of its own first: an order waited for is rarely there yet, and the
        # next look, at most a tick away, reads it with every other one waited for
        arrival = await arrivals.wait(str(order_id), seconds)
        response.headers["Preference-Applied"] = f"wait={seconds}"
    if arrival is not None:
        position, found = arrival
        if getattr(request.state, "reach", None) is not None:  # no min_position: as `reading`
            request.state.projection_position = position
    else:  # no wait, or it ran out: the 404 then reflects a read of its own
        found = await anyio.to_thread.run_sync(_order, request, str(order_id))
    if found is None or (who.role is Role.CUSTOMER and found["customer_id"] != who.sub):
        raise UnknownOrder(order_id)
    return OrderView.model_validate(found)


def _order(request: Request, order_id: str) -> Row | None:
    with reading(request) as tx:
        return queries.order(tx, order_id)


def arrived_orders(
    store: ReadStore, runner: SqlProjector, recent: RecentPositions
) -> Callable[[list[str]], dict[str, Arrival]]:
    """What a waiting read answers: the orders the read models hold now, each with the
    position read just before them (a lower bound of what they reflect, as `reading`'s)."""

    def look(order_ids: list[str]) -> dict[str, Arrival]:
        with store.read() as tx:
            position = recent.read(runner, tx)["orders"]
            return {key: (position, row) for key, row in queries.orders(tx, order_ids).items()}

    return look


@router.get("", response_model=OrderPage)
def list_orders(
    request: Request,
    customer_id: CustomerId | None = None,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    who: Principal = Depends(readers),
    _: int | None = Depends(reflecting("orders", "customer_orders")),
) -> OrderPage:
    if who.role is Role.CUSTOMER:
        if customer_id not in (None, who.sub):
            raise Forbidden("customers see their own orders only")
        customer_id = who.sub
    with reading(request) as tx:
        items, next_cursor = queries.orders_page(
            tx, customer_id, status and status.value, limit, cursor
        )
    return OrderPage.model_validate({"items": items, "next_cursor": next_cursor})
