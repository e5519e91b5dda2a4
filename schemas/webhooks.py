"""The payment provider's webhook events, as much of them as OrderFlow reads."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.commands import numbers_only


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")  # providers add fields all the time


class PaymentMetadata(Lenient):
    order_id: UUID = Field(description="Set by OrderFlow when it created the payment")


class PaymentError(Lenient):
    message: str = Field(max_length=500)


class PaymentObject(Lenient):
    _numbers_are_numbers = field_validator("*", mode="before")(classmethod(numbers_only))

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


PAYMENT_EVENT_TYPES = (
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
)


class PaymentEventData(Lenient):
    object: PaymentObject


class PaymentEvent(Lenient):
    """An event OrderFlow acts on: its object is the payment (or the charge refunded)."""

    id: str = Field(min_length=1, max_length=255)
    type: Literal["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"]
    data: PaymentEventData


def provider_event_schema() -> dict[str, Any]:
    """The request body as the OpenAPI description tells it: an event of a payment type
    carries a payment object; any other type is accepted and ignored."""
    payment = _inlined(PaymentEvent.model_json_schema())
    other = _inlined(ProviderEvent.model_json_schema())
    other["properties"]["type"]["not"] = {"enum": list(PAYMENT_EVENT_TYPES)}
    return {"oneOf": [payment, other]}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its `$defs` put in place, so it stands alone in another document."""
    definitions = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(definitions[ref.removeprefix("#/$defs/")]))
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


class WebhookAnswer(BaseModel):
    status: Literal["applied", "refund_due", "ignored", "refused"] = Field(
        description="applied: recorded on the order; refund_due: money received for an "
        "order that cannot take it, recorded as owed back; ignored: an event type not used; "
        "refused: nothing recorded, no money involved (logged)"
    )
    detail: str | None = None
    order_id: UUID | None = None
    position: int | None = None
