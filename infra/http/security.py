"""Who may call what: a bearer token's principal, checked against the roles a route allows."""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from domain.base_error import OrderFlowError
from infra.http.auth import InvalidToken
from infra.http.identity import TokenVerifier
from schemas.auth import Principal, Role

bearer = HTTPBearer(
    auto_error=False,
    description="A JWT of the configured identity provider (RS256/ES256), or in embedded mode "
    "one minted by `orderflow auth token` (HS256)",
)


class Unauthenticated(OrderFlowError):
    code = "unauthenticated"


class Forbidden(OrderFlowError):
    code = "forbidden"


@dataclass(frozen=True)
class Requirement:
    """The dependency that gives a route its caller's principal, when its role is allowed."""

    allowed: frozenset[Role]

    # async: a token known already is answered in the event loop, with no hop to a worker
    # thread (a sync dependency costs one per request); any other is checked in one
    async def __call__(
        self, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        if credentials is None:
            raise Unauthenticated("a bearer token is required")
        verify: TokenVerifier = request.app.state.token_verifier
        token = credentials.credentials
        try:
            who = verify.known(token)
            if who is None:
                who = await anyio.to_thread.run_sync(verify, token)
        except InvalidToken as bad:
            raise Unauthenticated(f"the bearer token is not valid: {bad}") from bad
        if who.role not in self.allowed:
            raise Forbidden(f"role {who.role.value!r} may not do this")
        return who

    def admitted(self, request: Request) -> Principal | None:
        """The principal `__call__` would give, when it is known without blocking and its
        role is allowed; None for every other request (`__call__` then tells why)."""
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        if not token or scheme.lower() != "bearer":  # as HTTPBearer reads the header
            return None
        verify: TokenVerifier = request.app.state.token_verifier
        who = verify.known(token)
        return who if who is not None and who.role in self.allowed else None


def require(*roles: Role) -> Requirement:
    return Requirement(frozenset(roles) | {Role.ADMIN})
