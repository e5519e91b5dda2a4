"""`orderflow snapshots`: take, inspect and drop aggregate snapshots."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer

from infra.cli.console import console
from infra.cli.tables import JsonOption, emit
from infra.eventstore.event_store import open_event_store
from infra.eventstore.snapshots import Snapshots
from infra.settings import Settings

snapshots_cli = typer.Typer(help="Aggregate snapshots: take, status, clear.", no_args_is_help=True)


def _snapshots() -> Snapshots:
    return Snapshots(open_event_store(Settings(), snapshots=True))


@snapshots_cli.command("take")
def snapshots_take(
    sku: Annotated[list[str] | None, typer.Option(help="An inventory item (repeatable).")] = None,
    order: Annotated[list[UUID] | None, typer.Option(help="An order (repeatable).")] = None,
    all_skus: Annotated[bool, typer.Option("--all-skus", help="Every inventory item.")] = False,
) -> None:
    """Snapshot aggregates at their current version now."""
    from domain.inventory import InventoryItem

    store = _snapshots()
    skus = list(store.skus()) if all_skus else list(sku or [])
    targets = [(f"SKU {s}", InventoryItem.create_id(s)) for s in skus]
    targets += [(f"order {o}", o) for o in order or []]
    if not targets:
        raise typer.BadParameter("name --sku, --order or --all-skus")
    for label, aggregate_id in targets:
        try:
            taken = store.take(aggregate_id)
        except LookupError:
            raise typer.BadParameter(f"no {label}") from None
        console.print(f"{label}: " + (f"snapshot at version {taken}" if taken else "up to date"))


@snapshots_cli.command("status")
def snapshots_status(as_json: JsonOption = False) -> None:
    """Per aggregate with snapshots: how many, the newest one's version and the aggregate's."""
    settings = Settings()
    statuses = _snapshots().status()
    columns = ("aggregate", "type", "snapshots", "latest snapshot", "version", "behind")
    rows = [
        (str(s.aggregate_id), s.aggregate_type, s.snapshots, s.latest, s.head, s.behind)
        for s in statuses
    ]
    emit(columns, rows, as_json=as_json)
    if as_json:
        return
    intervals = settings.snapshot_intervals
    console.print(
        f"{sum(s.snapshots for s in statuses)} snapshots of {len(statuses)} aggregates; "
        + (", ".join(f"{k} every {n} events" for k, n in intervals.items()) or "no interval set")
    )


@snapshots_cli.command("clear")
def snapshots_clear() -> None:
    """Drop every snapshot (they only save time): after a change to how events apply."""
    console.print(f"dropped {_snapshots().clear()} snapshots")
