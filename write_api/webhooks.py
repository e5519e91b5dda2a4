"""Signed payment webhooks: the provider's events become commands, once each.

The provider's event id is the idempotency key, so a redelivered event answers as before
and appends nothing. Money is never lost on the way (ADR 0021):

- a payment the order cannot take (ended, already paid, another amount or currency) is
  recorded on the order as owed back (order.payment_unapplied) and answered 200;
- a passing failure (conflicts outlasting the retries, the event store unreachable) is
  answered 503, so the provider delivers the event again;
- an order OrderFlow does not know is 404: the provider keeps the event as undelivered.

Refusals that move no money (a failed payment for an order no longer waiting for one, a
refund nobody owed) are answered 200 "refused" and logged for an operator."""

from __future__ import annotations

import hashlib
import logging
import time

from fastapi import APIRouter, Header, Request
from pydantic import ValidationError

from commands.bus import CommandBus, Render
from commands.errors import ApplicationError, ConcurrencyConflict, NotFound
from commands.ports import CommandContext, IdempotencyClaim
from domain.errors import DomainError, PaymentAlreadyRecorded
from infra.http.webhook_signature import BadSignature, verify
from infra.observability import metrics
from schemas.commands import OrderCommand, RecordPaymentFailure, RecordRefund, SettlePayment
from schemas.responses import OrderStatusChanged, PaymentSettled
from schemas.webhooks import PaymentObject, ProviderEvent, WebhookAnswer, provider_event_schema
from write_api.answers import answer_as
from write_api.errors import PROBLEM_RESPONSES, ProviderShouldRetry

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)


def to_command(event: ProviderEvent) -> OrderCommand | None:
    """None for event types OrderFlow does not act on."""
    if event.type not in (
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.refunded",
    ):
        return None
    payment = PaymentObject.model_validate(event.data.object)
    order_id = payment.metadata.order_id
    if event.type == "payment_intent.succeeded":
        return SettlePayment(
            order_id=order_id,
            amount_cents=payment.amount,
            currency=payment.currency.upper(),
            payment_ref=payment.id,
            provider_event_id=event.id,
        )
    if event.type == "payment_intent.payment_failed":
        reason = payment.last_payment_error.message if payment.last_payment_error else "failed"
        return RecordPaymentFailure(order_id=order_id, reason=reason, payment_ref=payment.id)
    return RecordRefund(
        order_id=order_id,
        refund_ref=payment.id,
        amount_cents=payment.amount_refunded or payment.amount,
        payment_ref=payment.payment_intent,
    )


def _answer_of(command: OrderCommand) -> Render:
    """What is kept for the provider's event id: the order's state after the command (and,
    for a payment, whether it was applied), from which a redelivery is answered again."""
    return answer_as(PaymentSettled if isinstance(command, SettlePayment) else OrderStatusChanged)


@router.post(
    "/payments",
    response_model=WebhookAnswer,
    description="The payment provider's signed events. 200 `applied`: the order is paid (or "
    "the failure or refund recorded); 200 `refund_due`: the money was received for an order "
    "that cannot take it and is recorded as owed back (`order.payment_unapplied`, listed by "
    "the read API's `/refunds-due`); 200 `ignored` / `refused`: nothing to do. 400: bad "
    "signature or an event OrderFlow cannot read. 404: unknown order. 503: a passing failure, "
    "deliver again.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": provider_event_schema()}},
        },
        "parameters": [
            {
                "name": "Payment-Signature",
                "in": "header",
                "required": True,
                "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'> with "
                "the shared secret",
                "schema": {"type": "string", "pattern": "^t=[0-9]+,v1=[0-9a-f]+"},
            }
        ],
    },
)
async def payment_event(
    request: Request,
    payment_signature: str | None = Header(default=None, include_in_schema=False),
) -> WebhookAnswer:
    body = await request.body()
    settings = request.app.state.write_side.settings
    verify(
        payment_signature,
        body,
        settings.webhook_secret,
        settings.payment_webhook_tolerance_seconds,
        time.time(),
    )
    try:
        event = ProviderEvent.model_validate_json(body)
        command = to_command(event)
    except ValidationError as bad:
        raise BadSignature(
            f"the event is not one OrderFlow understands: {bad.errors()[0]['msg']}"
        ) from bad
    if command is None:
        return WebhookAnswer(status="ignored", detail=f"event type {event.type} is not used")
    bus: CommandBus = request.app.state.write_side.bus
    context = CommandContext(correlation_id=request.state.correlation_id, actor="payment-provider")
    claim = IdempotencyClaim("webhook:payments", event.id, hashlib.sha256(body).hexdigest())
    try:
        reply = await bus.answer_async(command, context, _answer_of(command), claim)
    except ConcurrencyConflict as busy:
        raise ProviderShouldRetry(busy.code, f"deliver event {event.id} again: {busy}") from busy
    except NotFound:
        raise  # 404: the provider keeps the event; no order here could hold its money
    except PaymentAlreadyRecorded as known:
        return WebhookAnswer(status="applied", detail=known.detail, order_id=command.order_id)
    except (DomainError, ApplicationError) as refused:
        log.warning(
            "payment event %s for order %s refused: %s", event.id, command.order_id, refused
        )
        return WebhookAnswer(status="refused", detail=str(refused), order_id=command.order_id)
    if reply.answer.body.get("applied") is False:
        if not reply.replayed:
            metrics.PAYMENTS_UNAPPLIED.labels(str(reply.answer.body["status"])).inc()
        return WebhookAnswer(
            status="refund_due",
            order_id=command.order_id,
            position=reply.position,
            detail="the order cannot take this payment: recorded as owed back",
        )
    return WebhookAnswer(
        status="applied",
        order_id=command.order_id,
        position=reply.position,
        detail="delivered again: nothing appended" if reply.replayed else None,
    )
