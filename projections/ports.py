"""What the read models need from the outside, as protocols: a store of SQL tables and a
source of events. The adapters implement them (the PostgreSQL and SQLite read stores, the
event store's log); read models never import the adapters.

Projections and queries write one SQL (PostgreSQL flavour, `%s` placeholders, upserts with
ON CONFLICT); a store runs it unchanged on PostgreSQL and on SQLite 3.35+."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol, runtime_checkable

from schemas.envelope import Envelope

Row = dict[str, Any]
Dialect = Literal["postgres", "sqlite"]


class Tx(Protocol):
    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...
    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Bulk-loads rows into a table (COPY on PostgreSQL)."""
        ...

    def all_each(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """Each query's rows; in a pipeline, the queries go to the server together."""
        ...

    def pipeline(self) -> AbstractContextManager[None]:
        """Statements sent without waiting for each one's answer (PostgreSQL's pipeline
        mode): a refusal shows at the next read or when the block ends, the transaction
        then failed. Elsewhere nothing changes."""
        ...


class ReadStore(Protocol):
    dialect: Dialect

    def transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction; on SQLite it holds the database's write lock."""
        ...

    def read(self) -> AbstractContextManager[Tx]:
        """A read that never blocks writers: each statement sees what was committed when
        it began (on SQLite, the whole read sees one snapshot)."""
        ...

    def schema(self) -> AbstractContextManager[Tx]:
        """A write transaction for DDL: one process at a time."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ForkableReadStore(ReadStore, Protocol):
    def forked_transaction(self) -> AbstractContextManager[Tx]:
        """A write transaction on a connection of its own, for a process forked from the
        one that made this store (the pool it inherited is that process's)."""
        ...


class EventSource(Protocol):
    """The event store's log as envelopes, in position order; each envelope names its
    predecessor in the log (`previous_position`)."""

    def head(self) -> int: ...

    def read(self, after: int, limit: int = 1000) -> list[Envelope]:
        """Up to `limit` envelopes after position `after` (0 or a position read before)."""
        ...

    def iterate(
        self, after: int = 0, until: int | None = None, batch: int = 1000
    ) -> Iterator[list[Envelope]]:
        """Batches from `after` up to `until` (default: the head when asked)."""
        ...

    def scan(self, after: int = 0, batch: int = 2000) -> Iterator[list[Envelope]]:
        """Like `iterate` up to the head as it is now, for reading the whole log fast."""
        ...


class LogSharesPlan(Protocol):
    """What both shares of one pass need, read once before the processes part."""

    @property
    def until(self) -> int:
        """The last position either share reads."""
        ...


@runtime_checkable
class SplittableEventSource(EventSource, Protocol):
    """A log whose whole-log scan two processes can share (projections/split_fold.py),
    each reading one share of the aggregates."""

    def can_split(self) -> bool: ...

    def shares(self, until: int) -> LogSharesPlan:
        """The plan of a pass shared up to position `until` (0 or a position that
        exists), read once, before the process reading the other share is forked."""
        ...

    def share_scan(
        # `shares`: what this source's `shares()` returned (its own type)
        self,
        share: int,
        shares: Any,
        batch: int = 2000,
        forked: bool = False,
    ) -> Iterator[list[Envelope]]:
        """The envelopes of one of two shares (0 or 1) of the aggregates, up to
        `shares.until` (`shares` from `shares()`), in log order, every envelope naming its
        predecessor in the whole log; every event of an aggregate in the same share.
        `forked`: called in a process forked from the one that made this source, which
        must then use connections of its own."""
        ...


class StoreUnavailable(RuntimeError):
    """A read model's store cannot be opened or reached (a server down, a lock held)."""
