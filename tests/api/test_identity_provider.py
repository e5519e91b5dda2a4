"""Tokens of an identity provider: RS256 and ES256 against its JWKS, served on loopback
(or read from a file), with issuer, audience, time and algorithm checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from infra.bootstrap import read_side
from infra.settings import Settings
from read_api.app import create_app

ISSUER = "https://id.example.test/realms/shop"
AUDIENCE = "orderflow"
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class Jwks:
    """The provider's published keys, served over HTTP on loopback; counts fetches."""

    def __init__(self) -> None:
        self.public: list[dict[str, Any]] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.public}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def publish(self, kid: str, key: Key) -> None:
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.public.append({**jwk, "kid": kid, "use": "sig"})


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> Iterator[Jwks]:
    served = Jwks()
    served.publish("rsa-1", rsa_key)
    served.publish("ec-1", ec_key)
    yield served
    served.server.shutdown()


def _client(settings: Settings, **identity: Any) -> TestClient:
    configured = settings.model_copy(
        update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, **identity}
    )
    return TestClient(create_app(read_side(configured, reports=False)))


@pytest.fixture
def client(sqlite_settings: Settings, jwks: Jwks) -> TestClient:
    return _client(sqlite_settings, jwt_jwks_url=jwks.url, jwt_jwks_cooldown_seconds=0)


def token(key: Key, kid: str | None, algorithm: str, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "customer-7",
        "role": "customer",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    claims.update(changes)
    headers = {"kid": kid} if kid else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def status(client: TestClient, bearer: str) -> int:
    return client.get("/orders", headers={"Authorization": f"Bearer {bearer}"}).status_code


def test_rs256_and_es256_tokens_of_the_provider_are_accepted(
    client: TestClient, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    assert status(client, token(rsa_key, "rsa-1", "RS256")) == 200
    assert status(client, token(ec_key, "ec-1", "ES256")) == 200


def test_a_small_clock_skew_is_allowed(client: TestClient, rsa_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    assert status(client, token(rsa_key, "rsa-1", "RS256", exp=now - 10)) == 200
    assert status(client, token(rsa_key, "rsa-1", "RS256", nbf=now + 10, iat=now + 10)) == 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token PyJWT refuses to make: `alg: none`, or HS256 keyed with a public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return f"{signing_input}."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(mac.digest())}"


def _admin_claims() -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "x", "role": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}


def _forgeries(
    rsa_key: rsa.RSAPrivateKey, stranger: rsa.RSAPrivateKey
) -> dict[str, Callable[[], str]]:
    now = int(time.time())
    return {
        "wrong issuer": lambda: token(rsa_key, "rsa-1", "RS256", iss="https://evil.test"),
        "wrong audience": lambda: token(rsa_key, "rsa-1", "RS256", aud="another-app"),
        "expired": lambda: token(rsa_key, "rsa-1", "RS256", exp=now - 120),
        "not yet valid": lambda: token(rsa_key, "rsa-1", "RS256", nbf=now + 120),
        "unknown kid": lambda: token(stranger, "rsa-9", "RS256"),
        "alg none": lambda: _hand_made({"alg": "none", "kid": "rsa-1"}, _admin_claims(), None),
        "HS256 with the public key as secret": lambda: _hand_made(
            {"alg": "HS256", "kid": "rsa-1"}, _admin_claims(), _public_pem(rsa_key)
        ),
        "RS256 header on the EC key's kid": lambda: token(rsa_key, "ec-1", "RS256"),
        "no role": lambda: token(rsa_key, "rsa-1", "RS256", role="superuser"),
        "signed by another key": lambda: token(stranger, "rsa-1", "RS256"),
    }


FORGERIES = [
    "wrong issuer",
    "wrong audience",
    "expired",
    "not yet valid",
    "unknown kid",
    "alg none",
    "HS256 with the public key as secret",
    "RS256 header on the EC key's kid",
    "no role",
    "signed by another key",
]


@pytest.mark.parametrize("forged", FORGERIES)
def test_bad_tokens_get_401(client: TestClient, rsa_key: rsa.RSAPrivateKey, forged: str) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bearer = _forgeries(rsa_key, stranger)[forged]()
    answer = client.get("/orders", headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 401, forged
    assert answer.headers["content-type"] == "application/problem+json"


def test_an_unknown_kid_refreshes_the_cached_keys_once(
    client: TestClient, jwks: Jwks, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert status(client, token(rsa_key, "rsa-1", "RS256")) == 200
    assert status(client, token(rsa_key, "rsa-1", "RS256")) == 200
    assert jwks.fetches == 1  # cached
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("rsa-2", rotated)
    assert status(client, token(rotated, "rsa-2", "RS256")) == 200
    assert jwks.fetches == 2


def test_the_role_comes_from_the_configured_claim(
    sqlite_settings: Settings, jwks: Jwks, rsa_key: rsa.RSAPrivateKey
) -> None:
    client = _client(sqlite_settings, jwt_jwks_url=jwks.url, jwt_role_claim="realm_access.roles")
    staff = token(rsa_key, "rsa-1", "RS256", realm_access={"roles": ["offline", "auditor"]})
    assert status(client, staff) == 200
    # an auditor may read the audit log; a customer may not
    audit = client.get("/audit/events", headers={"Authorization": f"Bearer {staff}"})
    assert audit.status_code == 200
    customer = token(rsa_key, "rsa-1", "RS256", realm_access={"roles": ["customer"]})
    denied = client.get("/audit/events", headers={"Authorization": f"Bearer {customer}"})
    assert denied.status_code == 403


def test_keys_from_a_jwks_file(
    sqlite_settings: Settings, tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "file-1"}]}))
    client = _client(sqlite_settings, jwt_jwks_file=path)
    assert status(client, token(ec_key, "file-1", "ES256")) == 200
    assert status(client, token(ec_key, "file-2", "ES256")) == 401


def test_an_unreachable_provider_is_503_not_401(
    sqlite_settings: Settings, rsa_key: rsa.RSAPrivateKey
) -> None:
    client = _client(sqlite_settings, jwt_jwks_url="http://127.0.0.1:9/jwks.json")
    answer = client.get(
        "/orders", headers={"Authorization": f"Bearer {token(rsa_key, 'rsa-1', 'RS256')}"}
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"]


def test_a_jwks_needs_issuer_and_audience(sqlite_settings: Settings) -> None:
    with pytest.raises(ValueError, match="ORDERFLOW_JWT_ISSUER"):
        Settings(**{**sqlite_settings.model_dump(), "jwt_jwks_url": "http://127.0.0.1:9/j"})
