"""The `orderflow` command line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from infra.auth import mint_token
from infra.bootstrap import write_side
from infra.demo import load_demo
from infra.event_store import open_event_store
from infra.settings import Settings
from schemas.auth import Role

app = typer.Typer(help="OrderFlow: event-sourced orders and inventory.", no_args_is_help=True)
db = typer.Typer(help="Database schema.", no_args_is_help=True)
auth = typer.Typer(help="Bearer tokens.", no_args_is_help=True)
app.add_typer(db, name="db")
app.add_typer(auth, name="auth")
console = Console(stderr=True)


def _serve(servers: list[uvicorn.Server]) -> None:
    async def run_all() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(run_all())


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Load a sample catalogue and orders.")] = False,
    data_dir: Annotated[Path, typer.Option(help="Where embedded data lives.")] = Path(".orderflow"),
    write_port: Annotated[int, typer.Option()] = 8000,
    read_port: Annotated[int, typer.Option()] = 8001,
) -> None:
    """Everything embedded in one process: SQLite event store, in-process projections."""
    from write_api.app import create_app

    settings = Settings(
        data_dir=data_dir, database_url=None, write_port=write_port, read_port=read_port
    )
    side = write_side(settings)
    if demo:
        placed = load_demo(side.bus)
        console.print(f"demo data: {placed} orders placed" if placed else "demo data: present")
    token = mint_token(settings.token_secret, "dev-admin", Role.ADMIN, 12 * 3600)
    console.print(f"write API: http://{settings.host}:{write_port}  (docs at /docs)")
    console.print(f"admin token (12 h): {token}", soft_wrap=True)
    config = uvicorn.Config(create_app(side), host=settings.host, port=write_port, log_level="info")
    _serve([uvicorn.Server(config)])


@app.command("write-api")
def write_api() -> None:
    """The write API alone, configured from ORDERFLOW_* variables."""
    from write_api.app import create_app

    settings = Settings()
    side = write_side(settings)
    config = uvicorn.Config(create_app(side), host=settings.host, port=settings.write_port)
    _serve([uvicorn.Server(config)])


@db.command("init")
def db_init() -> None:
    """Create (or bring up to date) the event store's tables."""
    settings = Settings()
    open_event_store(settings).close()
    where = settings.sqlite_path if settings.embedded else "PostgreSQL"
    console.print(f"event store ready in {where}")


@auth.command("token")
def auth_token(
    sub: Annotated[str, typer.Option(help="Subject: the customer id for customers.")],
    role: Annotated[Role, typer.Option(help="customer, operator, auditor or admin.")],
    ttl: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
) -> None:
    """Mint a bearer token with the configured secret (for development and tests)."""
    settings = Settings()
    print(mint_token(settings.token_secret, sub, role, ttl or settings.jwt_ttl_seconds))


def main() -> None:
    app()
