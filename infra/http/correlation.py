"""X-Correlation-ID: taken from the request when it is sane, otherwise made, and echoed."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-correlation-id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER.encode(), b"").decode("latin-1")
        cid = given if _SANE.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = cid
        token = correlation_id.set(cid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((HEADER.encode(), cid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
