"""Orders as the read models hold them."""

from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, Depends, Query, Request

from commands.errors import UnknownOrder
from domain.order import OrderStatus
from infra.http.security import Forbidden, require
from projections import queries
from projections.ports import Row
from read_api.consistency import FRESHNESS_HEADERS, reading, reading_async, reflecting
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


@router.get("/{order_id}", response_model=OrderView)
async def get_order(
    order_id: UUID,
    request: Request,
    who: Principal = Depends(readers),
    _: int | None = Depends(reflecting("orders")),
) -> OrderView:
    found = await _order(request, str(order_id))
    if found is None or (who.role is Role.CUSTOMER and found["customer_id"] != who.sub):
        raise UnknownOrder(order_id)
    return OrderView.model_validate(found)


async def _order(request: Request, order_id: str) -> Row | None:
    """From the event loop where the read store has asyncio reads (PostgreSQL, once the
    app's lifespan opened them), else in a worker thread."""
    if request.app.state.async_reads is None:

        def read() -> Row | None:
            with reading(request) as tx:
                return queries.order(tx, order_id)

        return await anyio.to_thread.run_sync(read)
    async with reading_async(request) as reader:
        return queries.order_of(await reader.all(queries.ORDER_WITH_LINES, (order_id,)))


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
