"""One protocol for every read model, whatever its store (Marten's single registry is the
model): a projector applies the log's events to the read models of one store and runs
their life cycle. SqlProjector (projections/sql_projector.py) does so for the tables in
the read store, one transaction per batch; ReportingProjector
(projections/reporting_projector.py) for the reporting tables in ClickHouse, with
idempotent rows and a progress table. The registry (projections/registry.py) says which
read model lives in which store; the transports (projections/feed.py) drive a projector,
and the CLI treats every read model alike through this protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from projections.ports import EventSource
from schemas.envelope import Envelope

if TYPE_CHECKING:
    from projections.verify import Checked

SHADOW = "__rebuild"  # suffix of a rebuild's shadow tables and state, in every store
Progress = Callable[[int, int], None]  # (position reached, head)


@dataclass(frozen=True)
class ReadModelStatus:
    name: str
    position: int
    last_event_at: datetime | str | None
    updated_at: datetime | str | None


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    position: int
    events: int


@dataclass(frozen=True)
class DeadLetter:
    """An event a read model could not take (failed), or one held behind such an event
    of its aggregate; `id` only where the store numbers them (the read store)."""

    id: int | None
    projection: str
    position: int
    aggregate_id: str
    event_type: str
    status: str
    attempts: int
    error: str
    created_at: Any
    envelope: Envelope


class NotComparable(Exception):
    """The read model has no checked rebuild (no comparison with its live tables)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} has no checked rebuild")


class Projector(Protocol):
    """The read models of one store: set up, apply a batch, positions, status, rebuild,
    verify, dead letters."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def setup(self) -> None:
        """Creates what is missing (tables, views, state)."""
        ...

    def apply(self, envelopes: Sequence[Envelope]) -> int:
        """Applies a batch, each event's effect once; returns how many were new."""
        ...

    def positions(self) -> dict[str, int]:
        """Per read model, its watermark: every event up to it is applied."""
        ...

    def statuses(self) -> list[ReadModelStatus]: ...

    def rebuild(self, events: EventSource, progress: Progress | None = None) -> list[RebuildReport]:
        """Folds the whole log into shadow tables, then swaps them in."""
        ...

    def checked_rebuild(
        self,
        names: Sequence[str],
        events: EventSource,
        *,
        swap: bool,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[Checked]:
        """The named read models rebuilt together, each compared with its live tables
        before the swap, swapped together only when all are equal or `force`
        (NotComparable where the store has none); swap=False is `verify`: nothing changes."""
        ...

    def letters(self, include_resolved: bool = False) -> list[DeadLetter]: ...

    def retry_letters(self, letter_ids: list[int] | None = None) -> tuple[int, int]:
        """Applies parked events again (the named letters' aggregates, or all); returns
        (released, still parked)."""
        ...
