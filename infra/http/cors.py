"""Cross-origin requests from browser front ends: off unless origins are configured."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

EXPOSED = [
    "ETag",
    "Location",
    "Retry-After",
    "X-Correlation-ID",
    "X-Projection-Position",
    "Idempotent-Replayed",
]


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Outermost middleware, so that preflights and every answer (errors included) carry
    the CORS headers a browser needs to read them."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "If-Match",
            "X-Correlation-ID",
        ],
        expose_headers=EXPOSED,
        max_age=600,
    )
