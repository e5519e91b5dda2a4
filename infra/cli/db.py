"""`orderflow db`: the tables of the event store and the read models."""

from __future__ import annotations

import typer

from infra.bootstrap import read_side
from infra.cli.console import console
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings

db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_cli.command("init")
def db_init() -> None:
    """Create (or bring up to date) the event store's and the read models' tables."""
    settings = Settings()
    open_event_store(settings).close()
    read_side(settings).close()
    where = settings.data_dir if settings.embedded else "PostgreSQL"
    console.print(f"event store and read models ready in {where}")
