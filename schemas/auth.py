"""Who is calling: the principal a bearer token names."""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    CUSTOMER = "customer"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    sub: str
    role: Role
