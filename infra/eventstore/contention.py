"""Which aggregates another write process keeps appending to: those on which the group
appender's batches were overtaken (group_commit.py), recently and more than once. The
write API routes the commands on them to one process (write_api/routing.py, ADR 0028).

Written by the appender's thread and read by the event loop's: each entry is replaced
whole, which the GIL makes atomic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from uuid import UUID

WINDOW_S = 10.0  # an aggregate stays contended this long after it was last seen so


class Contention:
    def __init__(
        self, after: int, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """after: overtakes within `window_s` of each other that make an aggregate
        contended; 0: every aggregate is."""
        self._after = after
        self._window_s = window_s
        self._clock = clock
        self._seen: dict[UUID, tuple[float, int]] = {}  # id -> (until, overtakes)

    def overtaken(self, aggregate_ids: Iterable[UUID]) -> None:
        """Another process appended to these while a batch of ours was deciding on them."""
        now = self._clock()
        for aggregate_id in aggregate_ids:
            until, count = self._seen.get(aggregate_id, (0.0, 0))
            self._seen[aggregate_id] = (now + self._window_s, count + 1 if until > now else 1)
        if len(self._seen) > 10_000:  # forget what is over
            self._seen = {k: v for k, v in self._seen.items() if v[0] > now}

    def contended(self, aggregate_id: UUID) -> bool:
        if self._after == 0:
            return True
        until, count = self._seen.get(aggregate_id, (0.0, 0))
        return count >= self._after and until > self._clock()

    def still_contended(self, aggregate_id: UUID) -> None:
        """Its commands are still routed: once routed, the other process stops overtaking
        our batches on it, and without this it would fall back to local decisions (and
        conflicts) every `window_s`."""
        until, count = self._seen.get(aggregate_id, (0.0, 0))
        if count:
            self._seen[aggregate_id] = (max(until, self._clock() + self._window_s), count)
