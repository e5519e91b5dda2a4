"""Orders as the read models hold them."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from commands.errors import UnknownOrder
from domain.order import OrderStatus
from infra.http.security import Forbidden, require
from projections import queries
from read_api.consistency import FRESHNESS_HEADERS, reading, reflecting
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
def get_order(
    order_id: UUID,
    request: Request,
    who: Principal = Depends(readers),
    _: int | None = Depends(reflecting("orders")),
) -> OrderView:
    with reading(request) as tx:
        found = queries.order(tx, str(order_id))
    if found is None or (who.role is Role.CUSTOMER and found["customer_id"] != who.sub):
        raise UnknownOrder(order_id)
    return OrderView.model_validate(found)


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
