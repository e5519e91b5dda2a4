"""The payment provider's webhook events, as much of them as OrderFlow reads."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")  # providers add fields all the time


class PaymentMetadata(Lenient):
    order_id: UUID = Field(description="Set by OrderFlow when it created the payment")


class PaymentError(Lenient):
    message: str = Field(max_length=500)


class PaymentObject(Lenient):
    id: str = Field(min_length=1, max_length=200)
    amount: int = Field(ge=0)
    amount_refunded: int | None = Field(default=None, ge=0)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    metadata: PaymentMetadata
    last_payment_error: PaymentError | None = None
    payment_intent: str | None = Field(
        default=None, max_length=200, description="On a charge: the payment it belongs to"
    )


class EventData(Lenient):
    object: dict[str, Any]


class ProviderEvent(Lenient):
    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=100)
    data: EventData


class WebhookAnswer(BaseModel):
    status: Literal["applied", "refund_due", "ignored", "refused"] = Field(
        description="applied: recorded on the order; refund_due: money received for an "
        "order that cannot take it, recorded as owed back; ignored: an event type not used; "
        "refused: nothing recorded, no money involved (logged)"
    )
    detail: str | None = None
    order_id: UUID | None = None
    position: int | None = None
