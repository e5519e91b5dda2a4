"""`orderflow auth`: bearer tokens signed with the configured secret."""

from __future__ import annotations

from typing import Annotated

import typer

from infra.cli.console import console
from infra.http.auth import mint_token
from infra.settings import Settings
from schemas.auth import Role

auth_cli = typer.Typer(help="Bearer tokens.", no_args_is_help=True)


@auth_cli.command("token")
def auth_token(
    sub: Annotated[str, typer.Option(help="Subject: the customer id for customers.")],
    role: Annotated[Role, typer.Option(help="customer, operator, auditor or admin.")],
    ttl: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
) -> None:
    """Mint a bearer token with the configured secret (for development and tests)."""
    settings = Settings()
    if settings.identity_provider:
        console.print("tokens come from the identity provider (ORDERFLOW_JWT_JWKS_*)")
        raise typer.Exit(2)
    print(mint_token(settings.token_secret, sub, role, ttl or settings.jwt_ttl_seconds))
