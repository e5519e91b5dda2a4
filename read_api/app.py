"""The read API application, built around a wired read side."""

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.bootstrap import ReadSide
from infra.http.correlation import CorrelationIdMiddleware
from infra.http.cors import install_cors
from infra.http.identity import token_verifier
from infra.http.metrics import HttpMetricsMiddleware, install_metrics
from infra.http.problems import install_problem_handlers
from infra.http.rate_limit import RateLimitMiddleware
from infra.observability.logging import protect_settings
from projections.sql_projector import SqlProjector
from read_api import audit, consistency, health, inventory, orders, refunds, reports
from read_api.arrivals import Arrivals
from read_api.errors import HANDLERS
from read_api.metrics import refresher

POSITION_HEADER = b"x-projection-position"
DEAD_LETTERS_HEADER = consistency.DEAD_LETTERS_HEADER.lower().encode()


class ProjectionPositionHeader:
    """Every answer says which position the read models reflect: the one the endpoint's
    dependency recorded (errors such as 404 or 503 projection-lag included), otherwise,
    for answers that read no projection (audit, health, 401…), the lowest of them all."""

    def __init__(self, app: ASGIApp, runner: SqlProjector) -> None:
        self.app = app
        self.runner = runner

    async def _lowest(self) -> int | None:
        try:
            return min((await anyio.to_thread.run_sync(self.runner.positions)).values())
        except Exception:  # the read store is down: /ready says so; no header then
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_position(message: Message) -> None:
            if message["type"] == "http.response.start":
                position = scope.get("state", {}).get("projection_position")
                if position is None:
                    position = await self._lowest()
                headers = message.setdefault("headers", [])
                if position is not None:
                    headers.append((POSITION_HEADER, str(position).encode()))
                parked = scope.get("state", {}).get("dead_letters_behind")
                if parked:
                    headers.append((DEAD_LETTERS_HEADER, str(parked).encode()))
            await send(message)

        await self.app(scope, receive, send_with_position)


def create_app(read_side: ReadSide) -> FastAPI:
    app = FastAPI(
        title="OrderFlow read API",
        version="1",
        description="Read models. Every answer carries X-Projection-Position; pass "
        "min_position (and wait_ms) to read your own writes. When events at or below "
        "min_position are parked as dead letters, the answer says how many in "
        "X-Projection-Dead-Letters: it may not reflect them.",
    )
    app.state.read_side = read_side
    app.state.recent_positions = recent = consistency.RecentPositions()
    app.state.arrivals = Arrivals(orders.arrived_orders(read_side.store, read_side.runner, recent))
    app.state.token_verifier = verifier = token_verifier(read_side.settings)
    app.include_router(orders.router)
    app.include_router(inventory.router)
    app.include_router(refunds.router)
    app.include_router(audit.router)
    app.include_router(health.router)
    install_problem_handlers(app, HANDLERS)
    if read_side.reporting is not None:
        reports.install(app)
    install_metrics(app, refresher(read_side))
    protect_settings(read_side.settings)
    app.add_middleware(ProjectionPositionHeader, runner=read_side.runner)
    app.add_middleware(
        RateLimitMiddleware,
        limit=read_side.settings.rate_limit,
        verify=verifier,
        api="read",
    )
    app.add_middleware(HttpMetricsMiddleware, api="read")
    app.add_middleware(CorrelationIdMiddleware)
    install_cors(app, read_side.settings.cors_origin_list)
    return app
