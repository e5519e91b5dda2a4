"""Stock levels and prices."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from commands.errors import UnknownSku
from infra.http.security import require
from projections import queries
from read_api.consistency import FRESHNESS_HEADERS, reading, reflecting
from read_api.errors import PROBLEM_RESPONSES
from schemas.auth import Principal, Role
from schemas.reads import InventoryPage, InventoryView
from schemas.types import MAX_POSITION, Sku

router = APIRouter(
    prefix="/inventory",
    tags=["inventory"],
    responses={**PROBLEM_RESPONSES, 200: {"headers": FRESHNESS_HEADERS}},
)
anyone = require(Role.CUSTOMER, Role.OPERATOR, Role.AUDITOR)


@router.get("/{sku}", response_model=InventoryView)
def get_item(
    sku: Sku,
    request: Request,
    _who: Principal = Depends(anyone),
    _: int | None = Depends(reflecting("inventory")),
) -> InventoryView:
    with reading(request) as tx:
        found = queries.item(tx, sku)
    if found is None:
        raise UnknownSku(sku)
    return InventoryView.model_validate(found)


@router.get("", response_model=InventoryPage)
def list_inventory(
    request: Request,
    below: Annotated[
        int | None,
        Query(ge=-MAX_POSITION, le=MAX_POSITION, description="only items with less available"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    _who: Principal = Depends(anyone),
    _: int | None = Depends(reflecting("inventory")),
) -> InventoryPage:
    with reading(request) as tx:
        items, next_cursor = queries.inventory_page(tx, below, limit, cursor)
    return InventoryPage.model_validate({"items": items, "next_cursor": next_cursor})
