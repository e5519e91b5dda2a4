"""A rebuild's one pass over the log, folded by two processes.

Folding is Python, bound to one core by the interpreter's lock, and decoding the log is
as costly again. But every handler reads and writes only the rows of its own event's
aggregate (the batched projector relies on it too: it loads a batch's rows by the
batch's aggregates, and a row not loaded counts as absent), so the aggregates can be
shared out: the log is still read once, each process reading its own share of the
aggregates from the server (`SplittableEventSource.share_scan`), both up to the same
position, read first, with what both scans need (`SplittableEventSource.shares`: the
log's holes, the server's event-id function), asked once before the fork. This process
decodes and folds one share into every projection, a process forked at the start the
other into its own rows, which it bulk-loads into the shadow tables itself, in a
transaction of its own, while this process loads its rows; then it sends its dead
letters and its event count. The shadow tables are committed
before the fork, without indexes, and indexed once both shares are in. The two shares'
rows have different keys, since keys hold the aggregate's id. Each process holds only
its own share's rows, so memory is still the read models' size.

Forked, not spawned: the helper starts in milliseconds with the projections and the
decoder it needs already imported, and touches nothing of this process's but the pipe
(no connection, no lock: its scan and its load open connections of their own); it ends
with os._exit, so it runs no clean-up of ours."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from projections.batch import Outcome, fold
from projections.collector import collection_paused
from projections.ports import (
    EventSource,
    ForkableReadStore,
    LogSharesPlan,
    ReadStore,
    SplittableEventSource,
    Tx,
)
from projections.projector import SHADOW
from projections.read_model import SqlReadModel
from projections.rows import Rows

JOIN_TIMEOUT_S = 10.0
MINE, THEIRS = 0, 1  # the shares of the log (SplittableEventSource.share_scan)
# The helper's load never waits on ours unless both hold one key (a fault: the keys of
# the two shares differ), and ours then waits for the helper's answer: it gives up instead.
LOAD_LOCK_TIMEOUT = "10s"


def splittable(events: EventSource, store: ReadStore) -> bool:
    """Whether a rebuild from `events` into `store` can be shared by two processes here."""
    return (
        isinstance(events, SplittableEventSource)
        and events.can_split()
        and isinstance(store, ForkableReadStore)
        and "fork" in multiprocessing.get_all_start_methods()
        and _cpus() > 1
    )


def _cpus() -> int:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_shadow(tx: Tx, projection: SqlReadModel, rows: Rows) -> None:
    """A fold's final rows into the projection's shadow tables, in bulk, then forgotten."""
    for table in projection.tables:
        if values := rows.values(table.name):
            tx.load(table.name + SHADOW, *values)
    rows.clear()


class HelperFailed(RuntimeError):
    """The helper process raised or died: the rebuild fails as a whole."""


class Helper:
    """The forked process folding the other share of the log, up to `shares.until`, into
    the shadow tables (which must exist, committed, before it starts)."""

    def __init__(
        self,
        projections: Sequence[SqlReadModel],
        events: EventSource,
        store: ReadStore,
        shares: LogSharesPlan,
        batch: int,
    ) -> None:
        assert isinstance(events, SplittableEventSource)
        assert isinstance(store, ForkableReadStore)
        self.shares = shares
        self.until = shares.until
        fork = multiprocessing.get_context("fork")
        self._results, results = fork.Pipe(duplex=False)
        self._process = fork.Process(
            target=_serve,
            args=(results, projections, events, store, shares, batch),
            name="rebuild-fold",
            daemon=True,
        )
        self._process.start()
        results.close()

    def loaded(self) -> tuple[dict[str, Outcome], int]:
        """Waits until the helper's rows are committed into the shadow tables: its dead
        letters by projection, and the number of events it read."""
        parked: dict[str, Outcome]
        parked, events = self._receive("loaded")
        return parked, events

    def close(self) -> None:
        """Waits for the helper to end (it ends once it has answered, or when the pipe
        closes); kills it if it does not."""
        self._results.close()
        self._process.join(JOIN_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def _receive(self, kind: str) -> tuple[Any, ...]:
        try:
            message = self._results.recv()
        except EOFError:
            raise HelperFailed(
                f"the rebuild's helper process ended early (exit code {self._process.exitcode})"
            ) from None
        if message[0] == "error":
            raise HelperFailed(f"the rebuild's helper process failed:\n{message[1]}")
        if message[0] != kind:
            raise HelperFailed(f"the helper sent {message[0]} where {kind} was expected")
        return tuple(message[1:])


def _serve(
    conn: Connection,
    projections: Sequence[SqlReadModel],
    events: SplittableEventSource,
    store: ForkableReadStore,
    shares: LogSharesPlan,
    batch: int,
) -> None:
    try:
        with collection_paused():  # the fold makes no cycles, and this process ends after it
            folds = {p.name: Rows(p.tables, complete=True) for p in projections}
            blocked: dict[str, set[str]] = {p.name: set() for p in projections}
            parked = {p.name: Outcome() for p in projections}
            read = 0
            for envelopes in events.share_scan(THEIRS, shares, batch, forked=True):
                for projection in projections:
                    outcome = fold(
                        projection, folds[projection.name], envelopes, blocked[projection.name]
                    )
                    parked[projection.name].failed += outcome.failed
                    parked[projection.name].held += outcome.held
                read += len(envelopes)
            with store.forked_transaction() as tx:
                tx.execute(f"SET LOCAL lock_timeout = '{LOAD_LOCK_TIMEOUT}'")
                for projection in projections:
                    load_shadow(tx, projection, folds.pop(projection.name))
            conn.send(("loaded", parked, read))
    except BaseException:
        with contextlib.suppress(OSError):  # the parent may be gone
            conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()
