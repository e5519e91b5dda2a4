"""Inventory commands: register a SKU, receive and adjust stock, set its price."""

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from infra.http.security import require
from schemas.auth import Principal, Role
from schemas.commands import AdjustStock, ChangePrice, ReceiveStock, RegisterItem
from schemas.requests import AdjustmentBody, PriceBody, ReceiptBody, RegisterItemBody
from schemas.responses import ItemRegistered, PriceSet, StockLevel
from schemas.types import Sku
from write_api.command_route import CommandRoute
from write_api.dispatch import Dispatcher, dispatcher
from write_api.errors import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/inventory", tags=["inventory"], responses=PROBLEM_RESPONSES, route_class=CommandRoute
)
operator = require(Role.OPERATOR)


@router.post("", status_code=201, response_model=ItemRegistered)
async def register_item(
    body: RegisterItemBody,
    who: Principal = Depends(operator),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    return await send(RegisterItem(**body.model_dump()), who, ItemRegistered, status_code=201)


@router.post("/{sku}/receipts", response_model=StockLevel)
async def receive_stock(
    sku: Sku,
    body: ReceiptBody,
    who: Principal = Depends(operator),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    return await send(ReceiveStock(sku=sku, quantity=body.quantity), who, StockLevel)


@router.post("/{sku}/adjustments", response_model=StockLevel)
async def adjust_stock(
    sku: Sku,
    body: AdjustmentBody,
    who: Principal = Depends(operator),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    return await send(AdjustStock(sku=sku, delta=body.delta, reason=body.reason), who, StockLevel)


@router.put("/{sku}/price", response_model=PriceSet)
async def change_price(
    sku: Sku,
    body: PriceBody,
    who: Principal = Depends(operator),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    return await send(ChangePrice(sku=sku, unit_price_cents=body.unit_price_cents), who, PriceSet)
