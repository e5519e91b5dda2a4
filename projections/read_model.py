"""A SQL read model: tables, and one plain function per event type it cares about.

Handlers change rows in memory (projections/rows.py); the projector loads and writes them,
naming tables as `{table}` in its SQL and filling in the live names or, during a rebuild,
the shadow names, so the same code builds both."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from projections.ports import Dialect, Row, Tx
from projections.rows import Rows
from schemas.envelope import Envelope

TIMESTAMP = {"postgres": "TIMESTAMPTZ", "sqlite": "TEXT"}
READ_STORE = "read_store"  # the store these read models live in (projections/registry.py)


@dataclass(frozen=True)
class Table:
    name: str
    columns: str  # the body of CREATE TABLE, with {ts} for timestamp columns
    key: tuple[str, ...]  # the primary key or a unique key: what upserts conflict on
    indexes: tuple[str, ...] = ()  # column lists
    # whether handlers look rows up: then `key` is one column holding the aggregate's id,
    # and the projector loads the rows of a batch's aggregates before folding it
    lookup: bool = True


class ReadModelTx:
    """A transaction that knows which physical tables this run of the projection writes."""

    def __init__(self, tx: Tx, names: dict[str, str]) -> None:
        self.tx = tx
        self.names = names

    def sql(self, sql: str) -> str:
        """The statement on this run's physical tables."""
        return sql.format(**self.names)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.tx.execute(self.sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.tx.executemany(self.sql(sql), rows)

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.tx.one(self.sql(sql), params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.tx.all(self.sql(sql), params)


Handler = Callable[[Envelope, Rows], None]
AnyHandler = TypeVar("AnyHandler")


def registrar(
    handlers: dict[str, AnyHandler], event_types: tuple[str, ...]
) -> Callable[[AnyHandler], AnyHandler]:
    """The decorator behind a read model's `on(...)`: the handler, registered for each type."""

    def register(handler: AnyHandler) -> AnyHandler:
        for event_type in event_types:
            handlers[event_type] = handler
        return handler

    return register


@dataclass
class SqlReadModel:
    name: str
    tables: tuple[Table, ...]
    description: str = ""
    handlers: dict[str, Handler] = field(default_factory=dict)

    def on(self, *event_types: str) -> Callable[[Handler], Handler]:
        return registrar(self.handlers, event_types)

    @property
    def store(self) -> str:
        return READ_STORE

    @property
    def relations(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables)

    @property
    def comparable(self) -> bool:
        """A checked rebuild compares its tables with the live ones (projections/verify.py)."""
        return True

    def table_names(self, suffix: str = "") -> dict[str, str]:
        return {t.name: t.name + suffix for t in self.tables}

    def create_tables(
        self,
        tx: Tx,
        dialect: Dialect,
        suffix: str = "",
        indexes: bool = True,
        dropped: bool = False,
    ) -> None:
        """Creates the tables that are missing; a rebuild adds the indexes after loading.
        `dropped`: the caller has just dropped them, so none is looked for (a round trip
        each, which a pipeline could not hide)."""
        for table in self.tables:
            physical = table.name + suffix
            if not dropped and _exists(tx, dialect, physical):
                continue
            columns = table.columns.format(ts=TIMESTAMP[dialect])
            tx.execute(f"CREATE TABLE {physical} ({columns})")
            if indexes:
                _create_indexes(tx, table, physical)

    def create_indexes(self, tx: Tx, suffix: str) -> None:
        for table in self.tables:
            _create_indexes(tx, table, table.name + suffix)


def _create_indexes(tx: Tx, table: Table, physical: str) -> None:
    """Index names carry a random tag because a swap renames tables but not indexes."""
    for n, index in enumerate(table.indexes):
        tag = uuid.uuid4().hex[:8]
        tx.execute(f"CREATE INDEX ix_{table.name}_{n}_{tag} ON {physical} ({index})")


def _exists(tx: Tx, dialect: Dialect, table: str) -> bool:
    if dialect == "sqlite":
        sql = "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = %s"
    else:
        sql = (
            "SELECT 1 AS found FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = %s"
        )
    return tx.one(sql, (table,)) is not None
