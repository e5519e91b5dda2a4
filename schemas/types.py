"""Constrained field types shared by requests, commands and responses."""

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, StringConstraints

Sku = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
CustomerId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@|-]*$"),
]
# positions and versions are 64-bit integers in both stores; the API takes them up to
# JSON's largest exact integer, so that every client and validator compares them exactly
MAX_POSITION = 2**53 - 1
Quantity = Annotated[int, Field(gt=0, le=1_000_000)]
Cents = Annotated[int, Field(ge=0, le=10**12)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_text(value: Any) -> Any:
    """Query dates and times are RFC 3339 text, as the description says: not a number
    that pydantic's lax mode would read as seconds since 1970."""
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("expected an RFC 3339 date or date-time, like 2026-11-29")
    return value


def _iso_text_only(value: Any) -> Any:
    """In a JSON body too, a time is RFC 3339 text, never a number."""
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 date-time string")
    return _iso_text(value)


IsoDate = Annotated[date, BeforeValidator(_iso_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_text)]
IsoAwareDateTimeText = Annotated[AwareDatetime, BeforeValidator(_iso_text_only)]
