"""Sealing personal fields with the subject's data key (AES-256-GCM), and opening them.

A sealed field is stored as `{"sealed": "A256GCM", "key_id": ..., "ciphertext": ...}`
(base64 of nonce + ciphertext + tag) in place of its value. The key id and the field's
name are bound in as associated data, so a ciphertext moved to another field or decrypted
with another key fails instead of yielding someone's data. Opening a field whose key is
destroyed yields None: the field is redacted, for good."""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.utils import get_topic, resolve_topic

from domain.personal import PersonalData
from infra.eventstore.personal_keys import DataKey

ALGORITHM = "A256GCM"
NONCE_BYTES = 12


class Keys(Protocol):
    def current(self, subject: str) -> DataKey: ...

    def find(self, key_id: str) -> bytes | None: ...


def personal_data_of(cls: type) -> PersonalData | None:
    """The declaration of the aggregate an event (or snapshot) class belongs to."""
    module, qualname = get_topic(cls).split(":", 1)
    outer = resolve_topic(f"{module}:{qualname.split('.', 1)[0]}")
    declared = getattr(outer, "personal_data", None)
    return declared if isinstance(declared, PersonalData) else None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("sealed") == ALGORITHM and "key_id" in value


def _aad(key_id: str, name: str) -> bytes:
    return f"{key_id}/{name}".encode()


def seal(state: dict[str, Any], declared: PersonalData, keys: Keys) -> dict[str, Any]:
    """A copy of `state` with its personal fields sealed (those present and not None)."""
    personal = [n for n in declared.fields if state.get(n) is not None and not is_sealed(state[n])]
    if not personal:
        return state
    key = keys.current(str(state[declared.subject]))
    sealed = dict(state)
    for name in personal:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps(state[name], separators=(",", ":"), sort_keys=True).encode()
        box = nonce + AESGCM(key.key).encrypt(nonce, plain, _aad(key.key_id, name))
        sealed[name] = {
            "sealed": ALGORITHM,
            "key_id": key.key_id,
            "ciphertext": base64.b64encode(box).decode(),
        }
    return sealed


def open_sealed(
    state: dict[str, Any], declared: PersonalData, keys: Keys
) -> tuple[dict[str, Any], list[str]]:
    """A copy of `state` with its sealed fields in clear, and the names of those whose
    key is gone (now None)."""
    opened, redacted = dict(state), []
    for name in declared.fields:
        value = state.get(name)
        if not isinstance(value, dict) or not is_sealed(value):
            continue
        key = keys.find(value["key_id"])
        clear = None if key is None else _decrypt(key, value, name)
        if clear is None:
            redacted.append(name)
        opened[name] = clear
    return opened, redacted


def _decrypt(key: bytes, value: dict[str, str], name: str) -> Any:
    box = base64.b64decode(value["ciphertext"])
    try:
        plain = AESGCM(key).decrypt(
            box[:NONCE_BYTES], box[NONCE_BYTES:], _aad(value["key_id"], name)
        )
    except InvalidTag:
        return None  # not this key's: as unreadable as a destroyed one
    return json.loads(plain)
