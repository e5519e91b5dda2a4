"""Vacuuming the claims table as the projector churns it.

Every applied event inserts a `projection_pending` row and a compaction soon deletes it
(projections/claims.py), so on PostgreSQL the table gathers a dead row per event until it
is vacuumed. Autovacuum looks at a database once a minute at most, a million events at
the projector's speed, and meanwhile every compaction's `DELETE … position <= watermark`
walks the index entries of all the rows deleted before it (measured: 1.3 µs an event
after 100,000 deleted rows, 14 µs after 800,000; the projector slowed by a third between
20,000 and 1,000,000 events), while the heap grows past the read models' own size in the
server's cache. So the projector vacuums the table itself after every `VACUUM_EVERY`
events it applied: a few milliseconds each time, the table staying at its live size.

A live projector also vacuums it at least every `VACUUM_AFTER_S` while it applies events:
at a few hundred events a second it applies them ten at a time, and each batch's
compaction paid for every dead row at once (1.2 ms a batch with 12,000 of them behind
the watermark, where the same statement took 0.04 ms on a vacuumed table; ADR 0019,
session 25)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from projections.ports import ReadStore

log = logging.getLogger(__name__)

VACUUM_EVERY = 100_000  # events applied by this process between two vacuums
VACUUM_AFTER_S = 1.0  # and at most this long between two, while events are applied
# SKIP_LOCKED: another projector's vacuum (or autovacuum) at work already does the job
VACUUM = "VACUUM (SKIP_LOCKED) projection_pending"


class ClaimsVacuum:
    """Counts the events a projector applied and vacuums the claims table every so many."""

    def __init__(
        self,
        every: int = VACUUM_EVERY,
        after_s: float = VACUUM_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every, self.after_s, self.clock = every, after_s, clock
        self.since = 0  # events applied since the last vacuum
        self.last = clock()  # when the last vacuum was (or this was made)
        self.runs = 0

    def applied(self, store: ReadStore, events: int) -> None:
        if store.dialect != "postgres":  # SQLite reuses a deleted row's space itself
            return
        self.since += events
        now = self.clock()
        if self.since < self.every and now - self.last < self.after_s:
            return
        self.since, self.last = 0, now
        try:
            # a read is a connection in autocommit: VACUUM cannot run in a transaction
            with store.read() as tx:
                tx.execute(VACUUM)
        except Exception as failed:  # the batch is in; the next vacuum tries again
            log.warning("projection_pending not vacuumed: %r", failed)
            return
        self.runs += 1
