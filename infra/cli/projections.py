"""`orderflow projections`: the read models' list, status, rebuild and verify."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from infra.bootstrap import read_side
from infra.cli.console import advance, bar_columns, console
from infra.cli.tables import JsonOption, emit
from infra.cli.times import moment
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings
from projections.catalog import ALL, BY_NAME, NAMES, REPORTING
from projections.rebuild import RebuildReport, rebuild_all

projections = typer.Typer(help="Read models: list, status, rebuild, verify.", no_args_is_help=True)


@projections.command("list")
def projections_list(as_json: JsonOption = False) -> None:
    """The projections and the tables they own."""
    rows = [(p.name, ", ".join(t.name for t in p.tables), p.description) for p in ALL]
    reporting_tables = ", ".join([*(t.name for t in REPORTING.tables), *REPORTING.views])
    rows.append((REPORTING.name, reporting_tables, REPORTING.description))
    emit(("projection", "tables", "what it holds"), rows, as_json=as_json)


@projections.command("status")
def projections_status(as_json: JsonOption = False) -> None:
    """Each projection's position and its lag behind the event store, in events and time."""
    settings = Settings()
    from infra.cli.reporting import reporting_configured, reporting_statuses

    events, reads = EventLog(open_event_store(settings)), read_side(settings, reports=False)
    head = events.head()
    columns = (
        "projection",
        "position",
        "head",
        "lag (events)",
        "lag (seconds)",
        "last applied",
        "freshness (s)",
    )
    rows: list[tuple[object, ...]] = []
    reporting = (
        reporting_statuses(settings, console.print) if reporting_configured(settings) else []
    )
    for status in [*reads.runner.statuses(), *reporting]:
        behind = head - status.position
        oldest = events.read(status.position, 1) if behind else []
        seconds = (datetime.now(UTC) - oldest[0].occurred_at).total_seconds() if oldest else 0.0
        rows.append(
            (
                status.name,
                status.position,
                head,
                behind,
                round(seconds, 1),
                status.updated_at,
                _freshness(status.last_event_at, status.updated_at),
            )
        )
    if not reporting_configured(settings):
        rows.append(
            (REPORTING.name, "not configured (ORDERFLOW_CLICKHOUSE_URL)", head, *[None] * 4)
        )
    emit(columns, rows, as_json=as_json)


def _freshness(event_at: datetime | str | None, applied_at: datetime | str | None) -> float | None:
    """Seconds from the last applied event's time to its apply: the read models' freshness
    at the last batch (the histogram orderflow_read_model_freshness_seconds has them all)."""
    event, applied = (moment(m) if isinstance(m, str) else m for m in (event_at, applied_at))
    if event is None or applied is None:
        return None
    event = event if event.tzinfo else event.replace(tzinfo=UTC)
    applied = applied if applied.tzinfo else applied.replace(tzinfo=UTC)
    return round(max(0.0, (applied - event).total_seconds()), 3)


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
    if name is not None and name not in NAMES:
        raise typer.BadParameter(f"unknown projection {name!r}; see `orderflow projections list`")
    if check or force:
        _checked(name, swap=True, force=force)
        return
    from infra.cli.reporting import ReportingUnavailable, rebuild_reports

    settings = Settings()
    events, reads = EventLog(open_event_store(settings)), read_side(settings, reports=False)
    chosen = list(NAMES) if all_ else [name or ""]
    sql = [BY_NAME[n] for n in chosen if n in BY_NAME]
    reports: list[RebuildReport] = []
    if sql:  # one pass over the log feeds them all
        label = ", ".join(p.name for p in sql)
        with Progress(*bar_columns(label), console=console) as bar:
            task = bar.add_task(label, total=max(events.head(), 1))
            reports += rebuild_all(sql, reads.store, events, advance(bar, task))
    if REPORTING.name in chosen:  # ClickHouse: shadow tables, EXCHANGE TABLES
        with Progress(*bar_columns(REPORTING.name), console=console) as bar:
            task = bar.add_task(REPORTING.name, total=max(events.head(), 1))
            try:
                reports.append(rebuild_reports(settings, events, progress=advance(bar, task)))
            except ReportingUnavailable as down:
                console.print(f"[red]reporting: not rebuilt: {down}[/]")
                raise typer.Exit(1) from down
    for report in reports:
        console.print(
            f"{report.projection}: rebuilt to position {report.position} "
            f"({report.events} events) and swapped in"
        )


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
    from infra.cli.comparison import show
    from projections.verify import checked_rebuild

    if name == REPORTING.name or (name is not None and name not in BY_NAME):
        raise typer.BadParameter(
            f"{name!r} has no checked rebuild; the read models: {list(BY_NAME)}"
        )
    settings = Settings()
    events, reads = EventLog(open_event_store(settings)), read_side(settings, reports=False)
    if name is None:
        console.print(f"{REPORTING.name} (ClickHouse) is not compared; the read models are")
    differ = False
    for chosen in [name] if name is not None else list(BY_NAME):
        with Progress(*bar_columns(chosen), console=console) as bar:
            task = bar.add_task(chosen, total=max(events.head(), 1))
            done = checked_rebuild(
                BY_NAME[chosen],
                reads.store,
                events,
                swap=swap,
                force=force,
                progress=advance(bar, task),
            )
        show(done.comparison, Console())
        differ = differ or not done.comparison.equal
        if swap:
            said = "swapped in" if done.swapped else "NOT swapped (differs; --force to swap)"
            console.print(f"{chosen}: rebuilt to position {done.report.position}: {said}")
    if differ:
        raise typer.Exit(1)
