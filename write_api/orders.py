"""Order commands: place, pay, ship, deliver, cancel."""

from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from infra.http.errors import problem_responses
from infra.http.security import Forbidden, require
from schemas.auth import Principal, Role
from schemas.commands import CancelOrder, DeliverOrder, PayOrder, PlaceOrder, ShipOrder
from schemas.requests import (
    CancellationBody,
    DeliveryBody,
    PaymentBody,
    PlaceOrderBody,
    ShipmentBody,
)
from schemas.responses import OrderPlaced, OrderStatusChanged
from write_api.command_route import CommandRoute
from write_api.dispatch import Dispatcher, dispatcher
from write_api.errors import PROBLEM_RESPONSES, MissingField

router = APIRouter(
    prefix="/orders", tags=["orders"], responses=PROBLEM_RESPONSES, route_class=CommandRoute
)
buyer = require(Role.CUSTOMER, Role.OPERATOR)
fulfilment = require(Role.OPERATOR)
staff = require(Role.OPERATOR)


def acting_customer(who: Principal) -> str | None:
    """Customers act on their own orders only; staff act on anyone's."""
    return who.sub if who.role is Role.CUSTOMER else None


@router.post("", status_code=201, response_model=OrderPlaced)
async def place_order(
    body: PlaceOrderBody,
    who: Principal = Depends(buyer),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    customer_id = body.customer_id
    if who.role is Role.CUSTOMER:
        if customer_id not in (None, who.sub):
            raise Forbidden("customers place orders for themselves only")
        customer_id = who.sub
    if customer_id is None:
        raise MissingField(["body", "customer_id"], "customer_id is required for staff")
    command = PlaceOrder(
        customer_id=customer_id,
        lines=tuple(body.lines),
        currency=body.currency,
        shipping_address=body.shipping_address,
    )
    return await send(command, who, OrderPlaced, status_code=201)


@router.post(
    "/{order_id}/payments",
    response_model=OrderStatusChanged,
    summary="Record a manual or offline payment (staff only)",
    description="An operator or admin records a payment taken outside the payment provider "
    "(bank transfer, cash, a provider dashboard). `payment_ref` names it and is required; "
    "the staff member's token subject is recorded as the event's actor. Customers pay "
    "through the provider, whose signed webhook (`POST /webhooks/payments`) confirms the "
    "payment: a customer token is answered 403 and nothing is appended.",
    responses=problem_responses({403: "Not an operator or admin (customers included)"}),
)
async def pay_order(
    order_id: UUID,
    body: PaymentBody,
    who: Principal = Depends(staff),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    command = PayOrder(
        order_id=order_id, amount_cents=body.amount_cents, payment_ref=body.payment_ref
    )
    return await send(command, who, OrderStatusChanged)


@router.post("/{order_id}/shipments", response_model=OrderStatusChanged)
async def ship_order(
    order_id: UUID,
    body: ShipmentBody,
    who: Principal = Depends(fulfilment),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    command = ShipOrder(
        order_id=order_id, carrier=body.carrier, tracking_number=body.tracking_number
    )
    return await send(command, who, OrderStatusChanged)


@router.post("/{order_id}/delivery", response_model=OrderStatusChanged)
async def deliver_order(
    order_id: UUID,
    body: DeliveryBody,
    who: Principal = Depends(fulfilment),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    return await send(DeliverOrder(order_id=order_id), who, OrderStatusChanged)


@router.post("/{order_id}/cancellation", response_model=OrderStatusChanged)
async def cancel_order(
    order_id: UUID,
    body: CancellationBody,
    who: Principal = Depends(buyer),
    send: Dispatcher = Depends(dispatcher),
) -> JSONResponse:
    command = CancelOrder(
        order_id=order_id, reason=body.reason, acting_customer=acting_customer(who)
    )
    return await send(command, who, OrderStatusChanged)
