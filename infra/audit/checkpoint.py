"""Signed checkpoints of the chain's head: what anchors the chain outside the database.

A checkpoint says "at time T the log reached position P with link hash H", signed with
Ed25519. Whoever can rewrite the event tables can recompute every link (infra/audit/chain.py)
but cannot sign, so a store that no longer reaches P with H is caught. Pure functions: the
keys come in as objects, files and the store are the callers' business."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from domain.base_error import OrderFlowError
from infra.audit.chain import Verification

FORMAT = "orderflow-checkpoint/1"


class InvalidCheckpoint(OrderFlowError):
    """A checkpoint that cannot be trusted: malformed, or its signature does not hold."""

    code = "invalid-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    id: str
    position: int
    head_hash: bytes
    created_at: datetime
    key_id: str
    signature: bytes

    def describe(self) -> str:
        return f"checkpoint {self.id} (position {self.position}, {self.created_at.isoformat()})"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """Names the key in a checkpoint, so a verifier holding another key says so."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw(public)).decode()


def _b64(text: str) -> bytes:
    cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
    return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)


def private_key(text: str) -> Ed25519PrivateKey:
    """PEM (PKCS#8, as `openssl genpkey -algorithm ed25519` writes) or base64 of 32 bytes."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(_b64(text))
    except ValueError as bad:
        raise ValueError(f"not an Ed25519 private key: {bad}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def public_key(text: str) -> Ed25519PublicKey:
    """PEM (SubjectPublicKeyInfo) or base64 of the 32 raw bytes."""
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(_b64(text))
    except ValueError as bad:
        raise ValueError(f"not an Ed25519 public key: {bad}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signing_payload(
    id_: str, position: int, head_hash: bytes, created_at: datetime, key: str
) -> bytes:
    """Every field but the signature, in one unambiguous line."""
    moment = created_at.astimezone(UTC).isoformat()
    return "|".join([FORMAT, id_, str(position), head_hash.hex(), moment, key]).encode()


def sign(key: Ed25519PrivateKey, position: int, head_hash: bytes, at: datetime) -> Checkpoint:
    at = at.astimezone(UTC)
    id_ = f"{at:%Y%m%dT%H%M%S%fZ}-{position}"
    kid = key_id(key.public_key())
    signature = key.sign(signing_payload(id_, position, head_hash, at, kid))
    return Checkpoint(id_, position, head_hash, at, kid, signature)


def check_signature(checkpoint: Checkpoint, public: Ed25519PublicKey) -> None:
    """Raises InvalidCheckpoint unless `public` signed exactly these fields."""
    if checkpoint.key_id != key_id(public):
        raise InvalidCheckpoint(
            f"{checkpoint.describe()} names key {checkpoint.key_id}; "
            f"the verifier holds key {key_id(public)}"
        )
    payload = signing_payload(
        checkpoint.id,
        checkpoint.position,
        checkpoint.head_hash,
        checkpoint.created_at,
        checkpoint.key_id,
    )
    try:
        public.verify(checkpoint.signature, payload)
    except InvalidSignature:
        raise InvalidCheckpoint(
            f"{checkpoint.describe()}: the signature does not match its content"
        ) from None


def reach(checkpoint: Checkpoint, state: Verification) -> Verification:
    """Judges a walk of the chain up to the checkpoint's position (never past it): it must
    end exactly there with the signed hash. Marks `state` failed, naming the checkpoint."""
    if not state.ok:
        return state
    if state.last_position != checkpoint.position:
        state.fail(
            checkpoint.position,
            f"{checkpoint.describe()}: the log ends at position {state.last_position} "
            "before it: events were removed from its end",
        )
    elif state.last_hash != checkpoint.head_hash:
        state.fail(
            checkpoint.position,
            f"{checkpoint.describe()}: the chain's hash there differs from the signed one: "
            "the log was rewritten",
        )
    return state


def to_json(checkpoint: Checkpoint) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "id": checkpoint.id,
            "position": checkpoint.position,
            "head_hash": checkpoint.head_hash.hex(),
            "created_at": checkpoint.created_at.isoformat(),
            "key_id": checkpoint.key_id,
            "signature": base64.b64encode(checkpoint.signature).decode(),
        },
        indent=2,
    )


def from_json(text: str | bytes) -> Checkpoint:
    try:
        fields: dict[str, Any] = json.loads(text)
        if fields.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        created_at = datetime.fromisoformat(fields["created_at"])
        if created_at.tzinfo is None:
            raise ValueError("created_at has no offset")
        position = fields["position"]
        if not isinstance(position, int) or position < 1:
            raise ValueError("position is not a positive integer")
        head_hash = bytes.fromhex(fields["head_hash"])
        if len(head_hash) != 32:
            raise ValueError("head_hash is not 32 bytes")
        return Checkpoint(
            id=str(fields["id"]),
            position=position,
            head_hash=head_hash,
            created_at=created_at,
            key_id=str(fields["key_id"]),
            signature=base64.b64decode(fields["signature"], validate=True),
        )
    except (ValueError, KeyError, TypeError) as bad:
        raise InvalidCheckpoint(f"not a checkpoint: {bad}") from None
