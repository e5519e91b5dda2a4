"""Checkpoints, the pure part: what is signed, what a forged or damaged file looks like,
and how a walk of the chain is judged against one."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from infra.audit.chain import Verification
from infra.audit.checkpoint import (
    InvalidCheckpoint,
    check_signature,
    from_json,
    key_id,
    private_key,
    public_key,
    reach,
    sign,
    to_json,
)

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HEAD = hashlib.sha256(b"head").digest()
AT = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)


def test_a_signed_checkpoint_round_trips_through_its_file_and_checks() -> None:
    taken = sign(KEY, 42, HEAD, AT)
    again = from_json(to_json(taken))
    assert again == taken
    assert (again.position, again.head_hash, again.created_at) == (42, HEAD, AT)
    check_signature(again, KEY.public_key())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", 41),
        ("head_hash", bytes(32).hex()),
        ("created_at", "2026-11-29T04:00:00+00:00"),
        ("id", "20261129T030000000000Z-41"),
    ],
)
def test_any_field_edited_in_the_file_breaks_the_signature(field: str, value: object) -> None:
    fields = json.loads(to_json(sign(KEY, 42, HEAD, AT)))
    fields[field] = value
    with pytest.raises(InvalidCheckpoint, match="signature does not match"):
        check_signature(from_json(json.dumps(fields)), KEY.public_key())


def test_a_checkpoint_signed_by_another_key_is_refused_naming_both_keys() -> None:
    other = Ed25519PrivateKey.generate()
    forged = sign(other, 42, HEAD, AT)
    with pytest.raises(InvalidCheckpoint, match=key_id(KEY.public_key())):
        check_signature(forged, KEY.public_key())
    # relabelled with our key's id, the signature still gives it away
    with pytest.raises(InvalidCheckpoint, match="signature does not match"):
        check_signature(replace(forged, key_id=key_id(KEY.public_key())), KEY.public_key())


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        json.dumps({"format": "something-else/9"}),
        to_json(sign(KEY, 42, HEAD, AT)).replace(HEAD.hex(), "abcd"),
        to_json(sign(KEY, 42, HEAD, AT)).replace('"position": 42', '"position": -1'),
    ],
)
def test_a_malformed_file_is_not_a_checkpoint(text: str) -> None:
    with pytest.raises(InvalidCheckpoint, match="not a checkpoint"):
        from_json(text)


def test_a_walk_ending_exactly_at_the_checkpoint_with_its_hash_reaches_it() -> None:
    checkpoint = sign(KEY, 42, HEAD, AT)
    state = reach(checkpoint, Verification(checked=42, last_position=42, last_hash=HEAD))
    assert (state.ok, state.first_bad_position) == (True, None)


def test_a_walk_ending_before_the_checkpoint_is_a_cut_log_named_by_the_checkpoint() -> None:
    checkpoint = sign(KEY, 42, HEAD, AT)
    state = reach(checkpoint, Verification(checked=41, last_position=41, last_hash=b"x" * 32))
    assert (state.ok, state.first_bad_position) == (False, 42)
    assert state.reason is not None
    assert checkpoint.id in state.reason
    assert "ends at position 41" in state.reason


def test_a_walk_reaching_the_position_with_another_hash_is_a_rewritten_log() -> None:
    checkpoint = sign(KEY, 42, HEAD, AT)
    state = reach(checkpoint, Verification(checked=42, last_position=42, last_hash=bytes(32)))
    assert (state.ok, state.first_bad_position) == (False, 42)
    assert state.reason is not None
    assert "rewritten" in state.reason
    assert checkpoint.id in state.reason


def test_a_walk_that_broke_earlier_keeps_its_own_break() -> None:
    broken = Verification(last_position=10)
    broken.fail(11, "the event's bytes do not match its link: it was altered")
    state = reach(sign(KEY, 42, HEAD, AT), broken)
    assert (state.first_bad_position, state.reason) == (
        11,
        "the event's bytes do not match its link: it was altered",
    )


def test_keys_read_from_pem_or_base64_are_the_same_key() -> None:
    pem = KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    seed = base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=")
    public_pem = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    expected = key_id(KEY.public_key())
    assert key_id(private_key(pem).public_key()) == expected
    assert key_id(private_key(seed).public_key()) == expected
    assert key_id(public_key(public_pem.decode())) == expected
    with pytest.raises(ValueError, match="not an Ed25519 private key"):
        private_key("c2hvcnQ=")
