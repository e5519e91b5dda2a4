"""The write API application, built around a wired write side."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra import heap
from infra.bootstrap import WriteSide, write_side
from infra.http.body_limit import BodyLimitMiddleware
from infra.http.correlation import CorrelationIdMiddleware
from infra.http.cors import install_cors
from infra.http.identity import token_verifier
from infra.http.metrics import HttpMetricsMiddleware, install_metrics
from infra.http.problems import install_problem_handlers
from infra.http.rate_limit import RateLimitMiddleware, parse_limit
from infra.observability.logging import configure_logging, protect_settings
from infra.observability.tracing import configure_tracing
from infra.settings import Settings
from write_api import health, inventory, orders, privacy, webhooks
from write_api.errors import HANDLERS
from write_api.routing import Router, router_for


def create_app(write_side: WriteSide, router: Router | None = None) -> FastAPI:
    """`router`: this process's, when it is one of several write processes."""

    @asynccontextmanager
    async def serving(_: FastAPI) -> AsyncIterator[None]:
        if router is not None:  # in the server's event loop: the other processes call it
            await router.start()
        try:
            yield
        finally:
            if router is not None:
                await router.stop()

    app = FastAPI(
        title="OrderFlow write API",
        version="1",
        description="Commands for orders and inventory. Errors are application/problem+json.",
        lifespan=serving,
        # FastAPI's own OpenTelemetry spans stay (infra/observability/tracing.py); its
        # OpenTelemetry metrics and logs would duplicate the Prometheus metrics and the
        # logs, and checking for their providers on every request cost CPU (ADR 0016)
        telemetry={"metrics": False, "logs": False},
    )
    app.state.write_side = write_side
    app.state.router = router
    app.state.token_verifier = verifier = token_verifier(write_side.settings)
    app.include_router(inventory.router)
    app.include_router(orders.router)
    app.include_router(webhooks.router)
    app.include_router(privacy.router)
    app.include_router(health.router)
    install_problem_handlers(app, HANDLERS)
    install_metrics(app)
    protect_settings(write_side.settings)
    app.add_middleware(BodyLimitMiddleware, max_bytes=write_side.settings.max_body_bytes)
    if parse_limit(write_side.settings.rate_limit) is not None:  # no layer when off
        app.add_middleware(
            RateLimitMiddleware,
            limit=write_side.settings.rate_limit,
            verify=verifier,
            api="write",
        )
    app.add_middleware(HttpMetricsMiddleware, api="write")
    app.add_middleware(CorrelationIdMiddleware)  # even a 413 carries the id
    install_cors(app, write_side.settings.cors_origin_list)
    return app


def from_environment() -> FastAPI:
    """What each process of `orderflow write-api --workers N` serves."""
    configure_logging(
        "write-api",
        os.environ.get("ORDERFLOW_LOG_LEVEL", "INFO"),
        log_format=os.environ.get("ORDERFLOW_LOG_FORMAT", "auto").lower(),
    )
    settings = Settings()
    configure_tracing(settings, "write-api")
    writes = write_side(settings)
    app = create_app(writes, router_for(writes))
    heap.settle()
    return app
