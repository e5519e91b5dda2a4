"""Where an order goes: part of a PlaceOrder request and of `order.created` (version 2)."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from schemas.types import Name, ShortText

PostalCode = Annotated[str, StringConstraints(min_length=1, max_length=16, strip_whitespace=True)]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class ShippingAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recipient: Name
    line1: ShortText
    line2: ShortText | None = None
    postal_code: PostalCode
    city: ShortText
    country: CountryCode  # ISO 3166-1 alpha-2, e.g. "DE"
