"""`orderflow projections`: the read models' list, status, rebuild and verify."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import Progress

from infra.cli import read_models
from infra.cli.console import advance, bar_columns, console
from infra.cli.tables import JsonOption, emit
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings
from projections.projector import Progress as Advance
from projections.registry import REGISTRY

projections = typer.Typer(help="Read models: list, status, rebuild, verify.", no_args_is_help=True)


@projections.command("list")
def projections_list(as_json: JsonOption = False) -> None:
    """The projections and the tables they own."""
    emit(("projection", "tables", "what it holds"), read_models.listing(), as_json=as_json)


@projections.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Each projection's position and its lag behind the event store, in events and time."""
    settings = Settings()
    events = EventLog(open_event_store(settings))
    rows = read_models.status_rows(settings, events, console.print)
    emit(read_models.STATUS_COLUMNS, rows, as_json=as_json)


@contextmanager
def _bar(label: str, head: int) -> Iterator[Advance]:
    with Progress(*bar_columns(label), console=console) as bar:
        yield advance(bar, bar.add_task(label, total=max(head, 1)))


@projections.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="The projection to rebuild.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Rebuild every projection.")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Compare with the live tables; swap only if equal.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="With --check: swap anyway.")] = False,
) -> None:
    """Rebuild from the event store into shadow tables, then swap them in atomically."""
    if (name is None) == (not all_):
        raise typer.BadParameter("name one projection, or pass --all")
    if name is not None and name not in REGISTRY:
        raise typer.BadParameter(f"unknown projection {name!r}; see `orderflow projections list`")
    if check or force:
        _checked(name, swap=True, force=force)
        return
    settings = Settings()
    events = EventLog(open_event_store(settings))
    read_models.rebuild(settings, events, name, _bar, console.print)


@projections.command("verify")
def projections_verify(
    name: Annotated[str | None, typer.Argument(help="The projection to verify.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every read model.")] = False,
) -> None:
    """Fold the log into shadow tables and compare them with the live ones; swap nothing.
    Exit code 1 if they differ."""
    if (name is None) == (not all_):
        raise typer.BadParameter("name one projection, or pass --all")
    _checked(name, swap=False, force=False)


def _checked(name: str | None, *, swap: bool, force: bool) -> None:
    """`verify` (swap=False) and `rebuild --check`, on one projection or all read models."""
    settings = Settings()
    events = EventLog(open_event_store(settings))
    differ = read_models.checked(
        settings, events, name, swap=swap, force=force, bar=_bar, say=console.print
    )
    if differ:
        raise typer.Exit(1)
