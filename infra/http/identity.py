"""Who a bearer token says the caller is: tokens of a company's identity provider
(RS256/ES256 against its JWKS) or, embedded and in tests, HS256 with the generated secret.

An identity provider's tokens are checked for signature, expiry and not-before (with a
small clock skew), issuer and audience; the role comes from a configurable claim. The
algorithm is never taken on the token's word alone: only RS256 and ES256 are accepted,
and each only with a key of its own family, so neither `alg: none` nor an HS256 token
signed with the public key as a secret (algorithm confusion) gets through."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError, PyJWKSet

from domain.base_error import OrderFlowError
from infra.http.auth import InvalidToken, known_principal, verify_token
from infra.settings import Settings
from schemas.auth import Principal, Role


class TokenVerifier(Protocol):
    def __call__(self, token: str) -> Principal:
        """The token's principal, or InvalidToken; may block (a key fetched over HTTP)."""
        ...

    def known(self, token: str) -> Principal | None:
        """The principal when it is known without blocking (a token verified before);
        None when only `__call__` can tell."""
        ...


class SecretVerifier:
    """HS256 tokens signed with the installation's secret (embedded mode, the CLI's
    tokens): each is verified once and known until it expires."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __call__(self, token: str) -> Principal:
        return verify_token(self.secret, token)

    def known(self, token: str) -> Principal | None:
        return known_principal(self.secret, token)


ASYMMETRIC = {"RS256": "RSA", "ES256": "EC"}
# one principal, one role: a token naming several gets the most powerful it names
_PRECEDENCE = [Role.ADMIN, Role.OPERATOR, Role.AUDITOR, Role.CUSTOMER]


class IdentityProviderUnavailable(OrderFlowError):
    """The JWKS could not be fetched: a transient failure (503), not a bad token (401)."""

    code = "identity-provider-unavailable"


class JwksFile:
    """Keys from a JWKS file, read again when a token names a key it lacks (rotation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._keys = self._read()

    def _read(self) -> dict[str, PyJWK]:
        keys = PyJWKSet.from_json(self.path.read_text()).keys
        return {str(k.key_id): k for k in keys if k.key_id}

    def get_signing_key(self, kid: str) -> PyJWK:
        with self._lock:
            if kid not in self._keys:
                self._keys = self._read()
            if kid not in self._keys:
                raise InvalidToken(f"no key {kid!r} in {self.path.name}")
            return self._keys[kid]


class IdentityProviderVerifier:
    def __init__(
        self,
        keys: PyJWKClient | JwksFile,
        *,
        issuer: str,
        audience: str,
        role_claim: str,
        leeway_seconds: float,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.role_claim = role_claim
        self.leeway = leeway_seconds

    def known(self, token: str) -> Principal | None:
        return None  # always checked (in a worker thread): its keys may need fetching

    def __call__(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            algorithm, kid = header.get("alg"), header.get("kid")
            if algorithm not in ASYMMETRIC:
                raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
            if not isinstance(kid, str):
                raise InvalidToken("the token names no key (kid)")
            key = self.keys.get_signing_key(kid)
            if key.key_type != ASYMMETRIC[algorithm]:
                raise InvalidToken(f"key {kid!r} is not a {ASYMMETRIC[algorithm]} key")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except InvalidToken:
            raise
        except PyJWKClientConnectionError as down:
            raise IdentityProviderUnavailable(str(down)) from down
        except (jwt.PyJWTError, ValueError, KeyError) as bad:
            raise InvalidToken(str(bad)) from bad
        return Principal(sub=str(claims["sub"]), role=self._role(claims))

    def _role(self, claims: dict[str, Any]) -> Role:
        named = _claim(claims, self.role_claim)
        values = named if isinstance(named, list) else [named]
        roles = {Role(v) for v in values if isinstance(v, str) and v in Role.__members__.values()}
        for role in _PRECEDENCE:
            if role in roles:
                return role
        raise InvalidToken(f"claim {self.role_claim!r} names no OrderFlow role")


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by its full name (URLs are common claim names), else by a dotted path into
    nested objects, like Keycloak's `realm_access.roles`."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def token_verifier(settings: Settings) -> TokenVerifier:
    """The identity provider's verifier when a JWKS is configured; HS256 otherwise."""
    if settings.jwt_jwks_url is None and settings.jwt_jwks_file is None:
        return SecretVerifier(settings.token_secret)
    assert settings.jwt_issuer is not None  # the settings refuse a JWKS without them
    assert settings.jwt_audience is not None
    keys: PyJWKClient | JwksFile = (
        JwksFile(settings.jwt_jwks_file)
        if settings.jwt_jwks_file is not None
        else PyJWKClient(
            str(settings.jwt_jwks_url),
            cache_jwk_set=True,
            lifespan=300,
            timeout=5,
            cooldown_duration=settings.jwt_jwks_cooldown_seconds,
        )
    )
    return IdentityProviderVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        role_claim=settings.jwt_role_claim,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
