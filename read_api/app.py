"""The read API application, built around a wired read side."""

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.bootstrap import ReadSide
from infra.http.correlation import CorrelationIdMiddleware
from infra.http.problems import install_problem_handlers
from read_api import audit, health, inventory, orders
from read_api.errors import HANDLERS

POSITION_HEADER = b"x-projection-position"


class ProjectionPositionHeader:
    """Copies the position an endpoint's dependency recorded onto the answer, errors
    (404, 503 projection-lag) included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_position(message: Message) -> None:
            position = scope.get("state", {}).get("projection_position")
            if message["type"] == "http.response.start" and position is not None:
                message.setdefault("headers", []).append((POSITION_HEADER, str(position).encode()))
            await send(message)

        await self.app(scope, receive, send_with_position)


def create_app(read_side: ReadSide) -> FastAPI:
    app = FastAPI(
        title="OrderFlow read API",
        version="1",
        description="Read models. Every answer carries X-Projection-Position; pass "
        "min_position (and wait_ms) to read your own writes.",
    )
    app.state.read_side = read_side
    app.state.token_secret = read_side.settings.token_secret
    app.include_router(orders.router)
    app.include_router(inventory.router)
    app.include_router(audit.router)
    app.include_router(health.router)
    install_problem_handlers(app, HANDLERS)
    app.add_middleware(ProjectionPositionHeader)
    app.add_middleware(CorrelationIdMiddleware)
    return app
