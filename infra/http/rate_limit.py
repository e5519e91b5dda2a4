"""Rate limiting per principal (a valid bearer token's subject), else per client IP.

A moving window of the `limits` library, in this process's memory: each API process
counts on its own. Over the limit the answer is 429 problem+json with `Retry-After`;
other principals keep their own budget. Probes and scrapes (/health, /ready, /metrics)
are never limited."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.http.auth import InvalidToken
from infra.http.identity import IdentityProviderUnavailable, TokenVerifier
from infra.http.problems import problem
from infra.observability import metrics

EXEMPT = frozenset({"/health", "/ready", "/metrics"})


def parse_limit(text: str | None) -> RateLimitItem | None:
    """A limit like "120/minute" or "10 per second"; None when unset, empty or "0"."""
    if text is None or text.strip() in ("", "0"):
        return None
    return parse(text)


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: str | None, verify: TokenVerifier, api: str) -> None:
        self.app = app
        self.item = parse_limit(limit)
        self.verify = verify
        self.api = api
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _key(self, scope: Scope) -> tuple[str, str]:
        """("principal", sub) for a valid bearer token; otherwise ("ip", client address),
        so a forged token cannot buy a fresh budget."""
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token:
            try:
                return "principal", self.verify(token.strip()).sub
            except (InvalidToken, IdentityProviderUnavailable):
                pass
        client = scope.get("client")
        return "ip", client[0] if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.item is None or scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        kind, who = self._key(scope)
        if self.limiter.hit(self.item, self.api, kind, who):
            await self.app(scope, receive, send)
            return
        stats = self.limiter.get_window_stats(self.item, self.api, kind, who)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        metrics.RATE_LIMITED.labels(self.api, kind).inc()
        answer = problem(
            429,
            "rate-limited",
            "Too many requests",
            f"more than {self.item} for this {'principal' if kind == 'principal' else 'client'};"
            f" retry after {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
        await answer(scope, receive, send)
