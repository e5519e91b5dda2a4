"""The event envelope: what crosses Kafka, feeds projections and is exported to auditors."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

AggregateType = Literal["order", "inventory"]


class Envelope(BaseModel):
    # Unknown fields are ignored, so a consumer keeps working when a producer adds one.
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(description="Stable: derived from aggregate id and version")
    type: str = Field(description="Dotted, past tense, e.g. order.created")
    aggregate_type: AggregateType
    aggregate_id: UUID
    version: int = Field(ge=1, description="The aggregate's version after this event")
    position: int = Field(
        ge=1,
        description="Global position in the event store: increases "
        "in commit order; a rolled-back append leaves a hole never filled",
    )
    previous_position: int = Field(
        ge=0,
        description="Position of the event before this one in the log (0 for the first):"
        " the chain consumers follow to know they have missed nothing",
    )
    occurred_at: datetime
    schema_version: int = Field(ge=1, description="Version of the payload's shape")
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    traceparent: str | None = Field(
        default=None,
        description="W3C trace context of the command that appended the event, when traced",
    )
    data: dict[str, Any]
    sealed: list[str] = Field(
        default_factory=list,
        description="Personal fields of `data` carried sealed (schemas/sealed.py) instead of"
        " in clear: on Kafka and in exports; a reader opens them while the key exists",
    )
    redacted: list[str] = Field(
        default_factory=list,
        description="Personal fields of `data` whose data key was destroyed (the customer"
        " was forgotten): shown as null, recoverable by no one",
    )
