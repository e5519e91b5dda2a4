"""A rebuild's one pass over the log, folded by two processes.

Folding is Python, bound to one core by the interpreter's lock, and decoding the log is
as costly again. But every handler reads and writes only the rows of its own event's
aggregate (the batched projector relies on it too: it loads a batch's rows by the
batch's aggregates, and a row not loaded counts as absent), so the aggregates can be
shared out: the log is read once, here; each batch is split by aggregate
(`SplittableEventSource.split_scan`), one share decoded and folded into every projection
here, the other sent still encoded to a process forked at the start, which decodes and
folds it into its own rows. At the end the helper sends its final rows back, table by
table, to be bulk-loaded after ours in the same transaction; the two shares' rows have
different keys, since keys hold the aggregate's id. Each process holds only its own
share's rows, so memory is still the read models' size.

Forked, not spawned: the helper starts in milliseconds with the projections and the
decoder it needs already imported, and touches nothing of this process's but the pipe
(no connection, no lock); it ends with os._exit, so it runs no clean-up of ours."""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import traceback
from collections.abc import Iterator, Sequence
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

from projections.batch import Outcome, fold
from projections.collector import collection_paused
from projections.ports import EventSource, SplittableEventSource
from projections.read_model import SqlReadModel
from projections.rows import Rows

CHUNK_ROWS = 10_000  # rows a message when the helper sends its tables back
JOIN_TIMEOUT_S = 10.0
PIPE_BYTES = 1 << 20


def splittable(events: EventSource) -> SplittableEventSource | None:
    """`events`, when a rebuild over them can be shared by two processes on this machine."""
    if (
        isinstance(events, SplittableEventSource)
        and events.can_split()
        and "fork" in multiprocessing.get_all_start_methods()
        and _cpus() > 1
    ):
        return events
    return None


def _cpus() -> int:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class HelperFailed(RuntimeError):
    """The helper process raised or died: the rebuild fails as a whole."""


class Helper:
    """The forked process folding the other share of the log."""

    def __init__(self, projections: Sequence[SqlReadModel], events: SplittableEventSource) -> None:
        fork = multiprocessing.get_context("fork")
        shards, self._shards = fork.Pipe(duplex=False)
        self._results, results = fork.Pipe(duplex=False)
        _widen(self._shards)
        self._process = fork.Process(
            target=_serve,
            args=(shards, results, projections, events),
            name="rebuild-fold",
            daemon=True,
        )
        self._process.start()
        shards.close()
        results.close()

    def fold(self, shard: Any) -> None:
        try:
            self._shards.send(shard)
        except OSError:  # it stopped reading: it says why, or it died
            self._receive("nothing")
            raise

    def parked(self) -> dict[str, Outcome]:
        """Ends the pass: the helper's dead letters, by projection."""
        self._shards.send(None)
        parked: dict[str, Outcome] = self._receive("parked")[0]
        return parked

    def table(self, table: str) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]] | None:
        """The helper's rows of the next table (in the order of the projections and their
        tables), streamed from the pipe as they are loaded; None when it has none."""
        name, columns = self._receive("table")
        if name != table:
            raise HelperFailed(f"the helper sent {name} where {table} was expected")
        if columns is None:
            return None

        def rows() -> Iterator[tuple[Any, ...]]:
            while chunk := self._receive("rows")[0]:
                yield from chunk

        return columns, rows()

    def close(self) -> None:
        """Waits for the helper to end (it ends once it has sent everything, or when the
        pipe closes); kills it if it does not."""
        self._shards.close()
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


def _widen(pipe: Connection) -> None:
    """Room for a few shards in the pipe (Linux lets a process take up to 1 MiB), so that
    this process seldom waits for the helper to read: 64 KiB held a fraction of one."""
    with contextlib.suppress(AttributeError, OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _serve(
    shards: Connection,
    conn: Connection,
    projections: Sequence[SqlReadModel],
    events: SplittableEventSource,
) -> None:
    try:
        with collection_paused():  # the fold makes no cycles, and this process ends after it
            folds = {p.name: Rows(p.tables, complete=True) for p in projections}
            blocked: dict[str, set[str]] = {p.name: set() for p in projections}
            parked = {p.name: Outcome() for p in projections}
            while (shard := shards.recv()) is not None:
                envelopes = events.decode_shard(shard)
                for projection in projections:
                    outcome = fold(
                        projection, folds[projection.name], envelopes, blocked[projection.name]
                    )
                    parked[projection.name].failed += outcome.failed
                    parked[projection.name].held += outcome.held
            conn.send(("parked", parked))
            for projection in projections:
                rows = folds.pop(projection.name)
                for table in projection.tables:
                    values = rows.values(table.name)
                    conn.send(("table", table.name, values[0] if values else None))
                    if values is None:
                        continue
                    for chunk in _chunks(values[1]):
                        conn.send(("rows", chunk))
                    conn.send(("rows", []))
                rows.clear()
    except BaseException:
        with contextlib.suppress(OSError):  # the parent may be gone
            conn.send(("error", traceback.format_exc()))
    finally:
        shards.close()
        conn.close()


def _chunks(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(islice(rows, CHUNK_ROWS)):
        yield chunk
