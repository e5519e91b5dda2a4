"""Stripe-style signed webhooks: `Payment-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`. A timestamp outside the tolerance is refused, so a captured request
cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac

from domain.base_error import OrderFlowError


class BadSignature(OrderFlowError):
    code = "bad-signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(header: str | None, body: bytes, secret: str, tolerance_s: int, now: float) -> None:
    if not header:
        raise BadSignature("the Payment-Signature header is missing")
    timestamps, signatures = [], []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise BadSignature("Payment-Signature must be t=<unix>,v1=<hex>")
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance_s:
        raise BadSignature(f"the signature's timestamp is more than {tolerance_s} s away")
    expected = sign(secret, timestamp, body).rsplit("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise BadSignature("the signature does not match the body")
