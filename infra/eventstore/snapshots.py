"""Snapshots for operators: take them now, see how far each lags its aggregate, drop them.

Snapshots are a cache of state the events already determine: the library takes them every
N events (ORDERFLOW_SNAPSHOT_INTERVAL*) and loads an aggregate from its latest one plus
the events after it; dropping them all loses nothing but time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Composed, Identifier

from infra.audit.queries import Audit
from infra.eventstore.envelopes import event_type
from infra.eventstore.event_store import OrderFlowApplication


@dataclass(frozen=True)
class SnapshotStatus:
    aggregate_id: UUID
    aggregate_type: str  # "order" or "inventory"
    snapshots: int
    latest: int  # the version of the newest snapshot
    head: int  # the aggregate's version

    @property
    def behind(self) -> int:
        """Events a load replays after the newest snapshot."""
        return self.head - self.latest


# For each aggregate with snapshots: how many, the newest, the aggregate's head version,
# and its first event's topic (which names the aggregate type).
_STATUS = (
    "SELECT s.originator_id AS originator_id, COUNT(*) AS snapshots, "
    "MAX(s.originator_version) AS latest, "
    "(SELECT MAX(e.originator_version) FROM {events} e "
    "WHERE e.originator_id = s.originator_id) AS head, "
    "(SELECT e.topic FROM {events} e "
    "WHERE e.originator_id = s.originator_id AND e.originator_version = 1) AS first_topic "
    "FROM {snapshots} s GROUP BY s.originator_id ORDER BY s.originator_id"
)
_CLEAR = "DELETE FROM {snapshots}"


class Snapshots:
    def __init__(self, app: OrderFlowApplication) -> None:
        if app.snapshots is None:
            raise ValueError("open the event store with snapshots=True")
        self._app = app
        self._recorder = app.snapshots.recorder

    def take(self, aggregate_id: UUID) -> int | None:
        """Snapshots the aggregate at its last version; None when that one exists."""
        version = self._head(aggregate_id)
        return version if self._app.snapshot(aggregate_id, version) else None

    def _head(self, aggregate_id: UUID) -> int:
        last = list(self._app.events.get(aggregate_id, desc=True, limit=1))
        if not last:
            raise LookupError(f"no aggregate {aggregate_id}")
        return last[0].originator_version

    def skus(self, batch: int = 1000) -> Iterator[str]:
        """Every registered SKU, in the order they were registered."""
        audit, after = Audit(self._app), 0
        while page := audit.events(after, batch, types=["inventory.item_registered"]):
            for envelope in page:
                yield str(envelope.data["sku"])
            after = page[-1].position

    def status(self) -> list[SnapshotStatus]:
        return [
            SnapshotStatus(
                aggregate_id=_uuid(row["originator_id"]),
                aggregate_type=event_type(row["first_topic"]).split(".", 1)[0],
                snapshots=int(row["snapshots"]),
                latest=int(row["latest"]),
                head=int(row["head"]),
            )
            for row in self._query(_STATUS, fetch=True)
        ]

    def clear(self) -> int:
        """Drops every snapshot; returns how many there were."""
        count = sum(s.snapshots for s in self.status())
        self._query(_CLEAR, fetch=False)
        return count

    def _query(self, template: str, fetch: bool) -> list[Any]:
        events = self._app.recorder
        snapshots = self._recorder
        if isinstance(snapshots, SQLiteAggregateRecorder):
            assert isinstance(events, SQLiteAggregateRecorder)
            sql = template.format(
                events=events.events_table_name, snapshots=snapshots.events_table_name
            )
            with snapshots.datastore.transaction(commit=not fetch) as c:
                c.execute(sql)
                return list(c.fetchall()) if fetch else []
        if isinstance(snapshots, PostgresAggregateRecorder):
            assert isinstance(events, PostgresAggregateRecorder)
            schema = Identifier(snapshots.datastore.schema)
            statement: Composed = SQL(template).format(
                events=Composed([schema, SQL("."), Identifier(events.events_table_name)]),
                snapshots=Composed([schema, SQL("."), Identifier(snapshots.events_table_name)]),
            )
            with snapshots.datastore.transaction(commit=not fetch) as curs:
                curs.execute(statement)
                return list(curs.fetchall()) if fetch else []
        raise TypeError(f"no snapshot queries for {type(snapshots).__name__}")


def _uuid(value: object) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
