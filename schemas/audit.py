"""Answers of the audit endpoints."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schemas.address import ShippingAddress
from schemas.envelope import Envelope
from schemas.responses import PricedLine
from schemas.types import MAX_POSITION, IsoAwareDateTimeText


class EventPage(BaseModel):
    items: list[Envelope]
    next_position: int


class History(BaseModel):
    items: list[Envelope]


class OrderState(BaseModel):
    order_id: UUID
    customer_id: str
    status: str
    currency: str
    total_cents: int
    lines: list[PricedLine]
    payment_ref: str | None
    refund_due: bool
    version: int
    shipping_address: ShippingAddress | None = None
    redacted: list[str] = Field(
        default_factory=list,
        description="Personal fields forgotten with the customer: null for good",
    )


class ItemState(BaseModel):
    sku: str
    name: str
    unit_price_cents: int
    on_hand: int
    reserved: int
    available: int
    version: int


class VerifyReport(BaseModel):
    ok: bool
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None
    last_position: int
    checkpoint: str | None = Field(
        default=None, description="The id of the signed checkpoint the store was checked against"
    )


class CheckpointInfo(BaseModel):
    id: str
    position: int
    head_hash: str
    created_at: datetime
    key_id: str


class CheckpointFile(BaseModel):
    """A checkpoint as `orderflow audit checkpoint` writes it."""

    format: Literal["orderflow-checkpoint/1"]
    id: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,99}$")
    position: int = Field(ge=1, le=MAX_POSITION)
    head_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex, 32 bytes")
    created_at: IsoAwareDateTimeText = Field(description="RFC 3339, with its offset")
    key_id: str = Field(min_length=1, max_length=200)
    signature: str = Field(
        pattern=r"^[A-Za-z0-9+/]{86}==$", description="Ed25519 (64 bytes), base64"
    )


class CheckpointList(BaseModel):
    items: list[CheckpointInfo]


class ExportedEvent(Envelope):
    """An envelope as exported: with the stored event and its link, so a file can be
    checked on its own and imported into a store with the very same chain."""

    recorded_at: datetime
    topic: str
    hash: str = Field(description="The event's link hash (hex): the chain over the file")
    state: str = Field(description="The stored event's exact bytes, base64")


class ExportHead(BaseModel):
    position: int = Field(ge=0, description="The last exported event's position (0: none)")
    hash: str = Field(description="Its link hash (hex)")
    events: int = Field(ge=0)
