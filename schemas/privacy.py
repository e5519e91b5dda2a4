"""What forgetting a customer's personal data answers."""

from datetime import datetime

from pydantic import BaseModel, Field

from schemas.types import CustomerId


class PersonalDataForgotten(BaseModel):
    customer_id: CustomerId
    keys_destroyed: int = Field(
        description="Data keys destroyed now: 0 when the customer was forgotten before "
        "or never gave personal data"
    )
    forgotten_at: datetime
    actor: str = Field(description="Who asked: recorded with the forgetting")
