"""How a personal field travels on Kafka and in exports: sealed with its subject's data key."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SealedValue(BaseModel):
    """A personal field encrypted (AES-256-GCM) with its subject's data key. Envelopes on
    Kafka and exports carry this form; a reader holding the key table opens it while the
    key exists (ADR 0023)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sealed: Literal["A256GCM"]
    key_id: str = Field(description="The data key's id, not the key")
    ciphertext: str = Field(description="base64 of nonce, ciphertext and tag")
