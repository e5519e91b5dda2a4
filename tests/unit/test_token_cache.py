"""Verified tokens are remembered until they expire, and only for their own secret."""

from __future__ import annotations

import time

import jwt
import pytest

from infra.http.auth import InvalidToken, mint_token, verify_token
from infra.http.identity import SecretVerifier
from schemas.auth import Principal, Role

SECRET = "unit-secret-of-at-least-32-bytes!!"


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    token = mint_token(SECRET, "alice", Role.CUSTOMER, 1)
    assert verify_token(SECRET, token) == Principal(sub="alice", role=Role.CUSTOMER)
    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        verify_token(SECRET, token)


def test_a_remembered_token_is_not_valid_under_another_secret() -> None:
    token = mint_token(SECRET, "bob", Role.OPERATOR, 60)
    verify_token(SECRET, token)
    with pytest.raises(InvalidToken):
        verify_token("another-secret-of-at-least-32-bytes", token)


def test_the_signature_is_checked_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    token = mint_token(SECRET, "carol", Role.ADMIN, 60)
    verify_token(SECRET, token)
    decoded: list[str] = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append("again"))
    assert verify_token(SECRET, token).sub == "carol"
    assert decoded == []


def test_a_token_is_known_without_blocking_only_once_verified_and_until_it_expires() -> None:
    """What the auth dependency answers in the event loop, with no worker thread."""
    verifier = SecretVerifier(SECRET)
    token = mint_token(SECRET, "dave", Role.AUDITOR, 1)
    assert verifier.known(token) is None  # never verified: checked in a worker thread
    assert verifier(token) == Principal(sub="dave", role=Role.AUDITOR)
    assert verifier.known(token) == Principal(sub="dave", role=Role.AUDITOR)
    assert SecretVerifier("another-secret-of-at-least-32-bytes").known(token) is None
    time.sleep(1.1)
    assert verifier.known(token) is None
