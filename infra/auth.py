"""Bearer tokens: HS256 JWTs naming a subject and one role."""

from __future__ import annotations

import time

import jwt

from schemas.auth import Principal, Role

ALGORITHM = "HS256"


class InvalidToken(Exception):
    pass


def mint_token(secret: str, sub: str, role: Role, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        return Principal(sub=claims["sub"], role=Role(str(claims.get("role"))))
    except (jwt.PyJWTError, ValueError) as bad:
        raise InvalidToken(str(bad)) from bad
