"""Bearer tokens: HS256 JWTs naming a subject and one role."""

from __future__ import annotations

import time

import jwt

from domain.base_error import OrderFlowError
from schemas.auth import Principal, Role

ALGORITHM = "HS256"


class InvalidToken(OrderFlowError):
    code = "invalid-token"


def mint_token(secret: str, sub: str, role: Role, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


# A client sends the same token with every request: its signature is checked once, and
# the principal kept until the token expires. Only valid tokens are kept.
_VERIFIED: dict[tuple[str, str], tuple[Principal, float]] = {}
_VERIFIED_MAX = 10_000


def known_principal(secret: str, token: str) -> Principal | None:
    """The principal of a token verified before and not expired yet; None otherwise."""
    known = _VERIFIED.get((secret, token))
    if known is not None and time.time() < known[1]:
        return known[0]
    return None


def verify_token(secret: str, token: str) -> Principal:
    if (known := known_principal(secret, token)) is not None:
        return known
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        who = Principal(sub=claims["sub"], role=Role(str(claims.get("role"))))
    except (jwt.PyJWTError, ValueError) as bad:
        raise InvalidToken(str(bad)) from bad
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()  # simplest bound; a busy cache refills in one request per client
    _VERIFIED[(secret, token)] = (who, float(claims["exp"]))
    return who
