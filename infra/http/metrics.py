"""`GET /metrics` on both APIs: the process's Prometheus metrics in the text format."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Response

from infra.metrics import latest

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
