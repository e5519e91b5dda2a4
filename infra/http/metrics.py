"""`GET /metrics` on both APIs: the process's Prometheus metrics in the text format, and
the count and latency of every request by route template and status."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache

from fastapi import FastAPI, Response
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS, latest

log = logging.getLogger(__name__)


def install_metrics(app: FastAPI, refresh: Callable[[], None] | None = None) -> None:
    """`refresh` updates gauges read from stores at scrape time; a failure there (a store
    is down) still answers the metrics the process holds."""

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        if refresh is not None:
            try:
                refresh()
            except Exception as down:
                log.warning("metrics refresh failed: %r", down)
        body, content_type = latest()
        return Response(body, media_type=content_type)


class HttpMetricsMiddleware:
    """Labels by the matched route's template (`/orders/{order_id}`), never the raw path,
    so the series stay few; a path no route matched counts as "unmatched"."""

    def __init__(self, app: ASGIApp, api: str) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler ends as a 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = getattr(scope.get("route"), "path", "unmatched")
                latency, requests = _series(self.api, scope["method"], route, status)
                latency.observe(time.perf_counter() - started)
                requests.inc()
            await send(message)

        await self.app(scope, receive, send_observed)


# The labelled children, kept: `labels` validates and locks on every call (ADR 0016,
# session 25). Routes are templates and methods and statuses few, so the keys are too.
@lru_cache(maxsize=4096)
def _series(api: str, method: str, route: str, status: int) -> tuple[Histogram, Counter]:
    return HTTP_LATENCY.labels(api, method, route), HTTP_REQUESTS.labels(
        api, method, route, str(status)
    )
