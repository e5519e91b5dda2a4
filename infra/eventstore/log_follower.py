"""Keeps the library's aggregate cache current from the notification log, in one query
per batch instead of one fast-forward query per aggregate and batch.

Appends commit in position order (the library's table lock, ADR 0010): once a position
is visible, every lower one is committed or gone. So the events after the last position
this process read are exactly what anyone appended since; each one of a cached aggregate
is applied to it, in version order. What is not cached is neither decoded nor kept. A
cached aggregate that would skip a version is dropped (the next load rebuilds it), and a
process that fell far behind drops the whole cache rather than replay the gap.

The same order lets a process skip the read: when its own append took the positions
right after the last one it had read, nothing else committed before it, so after it
the cache is current to that append (`appended`). Until CURRENT_FOR_S has passed since
then, `current` says so and the group appender decides without reading first (what
commits meanwhile makes an append of the same aggregate conflict; see group_commit.py
for the decisions that append nothing).

With another process appending, our appends rarely follow on from what we read, so most
batches would read first. While that is so (another process's append seen within
CURRENT_FOR_S), the append reads what the others appended after our last position in its
own round trip (`read_request`); by the same order argument its positions and that read
cover the log up to both, so `appended` applies the read and the cache is current again,
as if the append had followed on (ADR 0016, session 24 update)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import Notification

from infra.eventstore.event_store import OrderFlowApplication

PAGE = 1000
MAX_GAP = 10_000
CURRENT_FOR_S = 1.0  # a heuristic: later, another process's appends are likely; read first


Changed = Callable[[Collection[UUID] | None], None]


def _nothing(changed: Collection[UUID] | None) -> None:
    pass


class LogFollower:
    def __init__(self, app: OrderFlowApplication) -> None:
        self._app = app
        self._seen: int | None = None  # read at the first batch: the database may be down now
        self._current_at: float | None = None  # when the cache was known current to _seen
        self._others_at: float | None = None  # when another process's append was last seen

    def current(self) -> bool:
        """Whether the cache was known current, to this process's last append, a moment ago."""
        at = self._current_at
        return at is not None and time.monotonic() - at < CURRENT_FOR_S

    def read_request(self) -> dict[str, int]:
        """What to ask the next append for: a read of others' appends after our position,
        while other processes append (one would come before the next batch anyway)."""
        others = self._others_at is not None and time.monotonic() - self._others_at < CURRENT_FOR_S
        if self._seen is None or not others or not self._app.reads_with_append:
            return {}
        return {"read_after": self._seen, "read_limit": PAGE}

    def appended(
        self, positions: Sequence[int], read: Sequence[Notification] | None = None
    ) -> None:
        """This process's own append, committed at these positions; `read`: what others
        appended after our position, read in the append's round trip, if it was asked."""
        first, last = min(positions), max(positions)
        cache: Any = self._app.repository.cache
        complete = read is not None and len(read) < PAGE  # else more may follow: read them
        if complete and read is not None and self._seen is not None and cache is not None:
            for notification in read:  # in position order; ours are cached already
                self._apply(cache, notification)
            self._seen = max(last, read[-1].id) if read else last
            self._current_at = time.monotonic()
            if read:
                self._others_at = self._current_at
        elif self._seen is not None and first == self._seen + 1 and last - first < len(positions):
            self._seen = last  # nothing else before it: read it would be reading ourselves
            self._current_at = time.monotonic()
        else:
            self._others_at = time.monotonic()
            self.forget_current()

    def forget_current(self) -> None:
        self._current_at = None

    def catch_up(self, before_applying: Changed = _nothing) -> None:
        """Applies what was appended since the last read to the cached aggregates; first
        tells `before_applying` which aggregates that is (None: this process cannot tell,
        and drops its whole cache), so that a caller whose cached aggregates hold
        decisions not yet stored can take back those that rest on what changed."""
        cache: Any = self._app.repository.cache
        if cache is None:
            before_applying(None)
            return
        self._current_at = time.monotonic()  # current to what the read below finds
        recorder = self._app.recorder
        if self._seen is None:  # what was cached before is current to an unknown position
            self._seen = recorder.max_notification_id() or 0
            before_applying(None)
            _drop_all(cache)
            return
        unread: list[Any] = []
        while True:
            page = self._app.notifications_after(unread[-1].id if unread else self._seen, PAGE)
            unread.extend(page)
            if len(page) < PAGE:
                break
            if len(unread) >= MAX_GAP:
                before_applying(None)
                _drop_all(cache)
                self._seen = recorder.max_notification_id() or self._seen
                return
        before_applying({n.originator_id for n in unread})
        if unread:
            self._others_at = time.monotonic()
        for notification in unread:
            self._apply(cache, notification)
        if unread:
            self._seen = unread[-1].id

    def _apply(self, cache: Any, notification: Any) -> None:
        try:
            aggregate = cache.get(notification.originator_id)
        except KeyError:
            return
        if notification.originator_version <= aggregate.version:
            return  # this process decided it, or read it already
        if notification.originator_version != aggregate.version + 1:
            cache.get(notification.originator_id, evict=True)
            return
        event = self._app.mapper.to_domain_event(notification)
        assert isinstance(event, CanMutateAggregate)
        event.mutate(aggregate)


def _drop_all(cache: Any) -> None:
    for aggregate_id in list(cache.cache):
        with suppress(KeyError):
            cache.get(aggregate_id, evict=True)
