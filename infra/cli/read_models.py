"""The read models' share of the CLI: `projections list|status|rebuild|verify`, the
`project` processes and the dead letters. Every read model of the registry is handled
alike: the names asked for are grouped by store, and each store's projector
(infra/bootstrap.py: opened_projector) does the work through the Projector protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from infra.bootstrap import NotConfigured, check_configured, opened_projector
from infra.cli.comparison import show
from infra.settings import Settings
from projections.metrics import lag_seconds
from projections.ports import EventSource, StoreUnavailable
from projections.projector import Progress
from projections.registry import REGISTRY

if TYPE_CHECKING:
    from infra.kafka.consumer import KafkaFeed

Say = Callable[[str], None]
Bar = Callable[[str, int], AbstractContextManager[Progress]]  # (label, head): a progress bar
STATUS_COLUMNS = (
    "projection",
    "position",
    "head",
    "lag (events)",
    "lag (seconds)",
    "last applied",
    "freshness (s)",
)


def listing() -> list[tuple[str, str, str]]:
    """(name, the tables and views it owns, what it holds) per read model."""
    return [(m.name, ", ".join(m.relations), m.description) for m in REGISTRY]


def status_rows(settings: Settings, events: EventSource, warn: Say) -> list[tuple[object, ...]]:
    """Each read model's position and its lag behind the event store, in events and time;
    a store not configured here says so in its read models' rows."""
    head = events.head()
    rows: list[tuple[object, ...]] = []
    for store in REGISTRY.stores:
        try:
            with opened_projector(settings, store) as projector:
                statuses = projector.statuses()
        except NotConfigured as missing:
            said = f"not configured ({missing.setting})"
            rows += [(name, said, head, *[None] * 4) for name in REGISTRY.in_store(store)]
            continue
        except StoreUnavailable as down:
            warn(f"{', '.join(REGISTRY.in_store(store))}: unavailable ({down})")
            continue
        for status in statuses:
            seconds = lag_seconds(events, status.position, head)
            freshness = _freshness(status.last_event_at, status.updated_at)
            rows.append(
                (
                    status.name,
                    status.position,
                    head,
                    head - status.position,
                    round(seconds, 1),
                    status.updated_at,
                    freshness,
                )
            )
    return rows


def _freshness(event_at: datetime | str | None, applied_at: datetime | str | None) -> float | None:
    """Seconds from the last applied event's time to its apply: the read models' freshness
    at the last batch (the histogram orderflow_read_model_freshness_seconds has them all)."""
    event, applied = (_utc(m) for m in (event_at, applied_at))
    if event is None or applied is None:
        return None
    return round(max(0.0, (applied - event).total_seconds()), 3)


def _utc(moment: datetime | str | None) -> datetime | None:
    if isinstance(moment, str):  # SQLite keeps times as ISO text
        moment = datetime.fromisoformat(moment)
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def rebuild(settings: Settings, events: EventSource, name: str | None, bar: Bar, say: Say) -> None:
    """`projections rebuild NAME|--all`: one pass over the log per store rebuilds its read
    models into shadow tables and swaps them in. With --all, a store not configured here
    is skipped; named, it is an error (exit 1), as is a store that cannot be opened."""
    for store, chosen in REGISTRY.by_store([name] if name else REGISTRY.names).items():
        label = ", ".join(chosen)
        try:
            with (
                opened_projector(settings, store, chosen) as projector,
                bar(label, events.head()) as progress,
            ):
                reports = projector.rebuild(events, progress)
        except NotConfigured as missing:
            say(f"{label}: not configured ({missing})")
            if name is None:
                continue
            raise typer.Exit(1) from missing
        except StoreUnavailable as down:
            say(f"[red]{label}: not rebuilt: {down}[/]")
            raise typer.Exit(1) from down
        for report in reports:
            say(
                f"{report.projection}: rebuilt to position {report.position} "
                f"({report.events} events) and swapped in"
            )


def checked(
    settings: Settings,
    events: EventSource,
    name: str | None,
    *,
    swap: bool,
    force: bool,
    bar: Bar,
    say: Say,
) -> bool:
    """`projections verify` (swap=False) and `rebuild --check`, on one read model or on all
    that have a checked rebuild; prints each comparison; True when one differed."""
    comparable = [m.name for m in REGISTRY if m.comparable]
    if name is not None and name not in comparable:
        raise typer.BadParameter(f"{name!r} has no checked rebuild; the read models: {comparable}")
    if name is None:
        for model in REGISTRY:
            if not model.comparable:
                say(f"{model.name} ({model.store}) is not compared; the read models are")
    differ = False
    for store, chosen in REGISTRY.by_store([name] if name else comparable).items():
        # one pass over the log for all of a store's read models
        with (
            opened_projector(settings, store, chosen) as projector,
            bar(", ".join(chosen), events.head()) as progress,
        ):
            checked = projector.checked_rebuild(
                chosen, events, swap=swap, force=force, progress=progress
            )
        for done in checked:
            show(done.comparison, Console())
            differ = differ or not done.comparison.equal
        for done in checked if swap else ():
            said = "swapped in" if done.swapped else "NOT swapped (one differs; --force to swap)"
            say(f"{done.report.projection}: rebuilt to position {done.report.position}: {said}")
    return differ


def letter_rows(
    settings: Settings, include_resolved: bool, full_errors: bool, warn: Say
) -> list[tuple[object, ...]]:
    """Every store's dead letters (a store not configured here has none)."""
    rows: list[tuple[object, ...]] = []
    for store in REGISTRY.stores:
        try:
            with opened_projector(settings, store) as projector:
                letters = projector.letters(include_resolved)
        except NotConfigured:
            continue
        except StoreUnavailable as down:
            warn(f"{', '.join(REGISTRY.in_store(store))}: unavailable ({down})")
            continue
        rows += [
            (
                letter.id,
                letter.projection,
                letter.position,
                letter.event_type,
                letter.aggregate_id,
                letter.status,
                letter.attempts,
                letter.error if full_errors else letter.error[:80],
            )
            for letter in letters
        ]
    return rows


def retry_letters(settings: Settings, letter_ids: list[int] | None, warn: Say) -> tuple[int, int]:
    """(released, still parked) over every store. A store that cannot be opened fails
    `retry --all` (exit 1: nothing was said of its letters); a named letter is found in
    the stores that number theirs."""
    released = parked = 0
    for store in REGISTRY.stores:
        try:
            with opened_projector(settings, store) as projector:
                more_released, more_parked = projector.retry_letters(letter_ids)
        except NotConfigured:
            continue
        except StoreUnavailable as down:
            warn(f"{', '.join(REGISTRY.in_store(store))}: unavailable ({down})")
            if letter_ids is None:
                raise typer.Exit(1) from down
            continue
        released, parked = released + more_released, parked + more_parked
    return released, parked


def default_projections(settings: Settings) -> list[str]:
    """`orderflow project` with no names: every read model whose store a projector process
    can reach (the reports only where a ClickHouse server is configured)."""
    reachable: list[str] = []
    for store in REGISTRY.stores:
        try:
            check_configured(settings, store, shared=True)
        except NotConfigured:
            continue
        reachable += REGISTRY.in_store(store)
    return reachable


def kafka_feeds(settings: Settings, names: Sequence[str], opened: ExitStack) -> list[KafkaFeed]:
    """One Kafka consumer per store for the read models named, their projectors kept open
    in `opened`. Each store's consumers form a group of their own: they commit their own
    offsets and can lag, stop or rebuild without touching the others."""
    from infra.kafka.consumer import KafkaFeed, group_for  # kafka-python: only where used

    base = REGISTRY.in_store(REGISTRY.stores[0])  # the full set owning the base group
    feeds = []
    for store, chosen in REGISTRY.by_store(names).items():
        projector = opened.enter_context(opened_projector(settings, store, chosen, shared=True))
        feeds.append(KafkaFeed(settings, projector, group_for(settings, chosen, base)))
    return feeds
