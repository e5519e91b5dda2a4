"""RFC 9457 problem details, the body of every error answer."""

from pydantic import BaseModel


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
