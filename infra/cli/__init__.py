"""The `orderflow` command line: the root command, one module per group of sub-commands.

The groups register here in the order `orderflow --help` lists them."""

from __future__ import annotations

import os
import sys

import typer

from infra.cli import background, servers
from infra.cli.audit import audit_cli
from infra.cli.auth import auth_cli
from infra.cli.db import db_cli
from infra.cli.dead_letters import dead_letters_cli
from infra.cli.privacy import privacy_cli
from infra.cli.projections import projections
from infra.cli.schemas import schemas_cli
from infra.cli.snapshots import snapshots_cli
from infra.settings import SettingsError, load_settings

app = typer.Typer(help="OrderFlow: event-sourced orders and inventory.", no_args_is_help=True)
app.add_typer(servers.commands)
app.add_typer(background.commands)
app.add_typer(db_cli, name="db")
app.add_typer(auth_cli, name="auth")
app.add_typer(dead_letters_cli, name="dead-letters")
app.add_typer(audit_cli, name="audit")
app.add_typer(projections, name="projections")
app.add_typer(schemas_cli, name="schemas")
app.add_typer(snapshots_cli, name="snapshots")
app.add_typer(privacy_cli, name="privacy")


def main() -> None:
    from infra.observability.logging import configure_logging, protect_settings, service_for
    from infra.observability.tracing import configure_tracing

    configure_logging(
        service_for(sys.argv),
        os.environ.get("ORDERFLOW_LOG_LEVEL", "INFO"),
        log_format=os.environ.get("ORDERFLOW_LOG_FORMAT", "auto").lower(),
    )
    try:
        settings = load_settings()
    except SettingsError as bad:
        for line in bad.lines:
            print(f"orderflow: invalid setting {line}", file=sys.stderr)
        raise SystemExit(2) from None
    protect_settings(settings)
    configure_tracing(settings, service_for(sys.argv))
    app()
