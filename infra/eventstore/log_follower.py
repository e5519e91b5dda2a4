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
for the decisions that append nothing)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from contextlib import suppress
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate

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

    def current(self) -> bool:
        """Whether the cache was known current, to this process's last append, a moment ago."""
        at = self._current_at
        return at is not None and time.monotonic() - at < CURRENT_FOR_S

    def appended(self, positions: Sequence[int]) -> None:
        """This process's own append, committed at these positions."""
        first, last = min(positions), max(positions)
        if self._seen is not None and first == self._seen + 1 and last - first < len(positions):
            self._seen = last  # nothing else before it: read it would be reading ourselves
            self._current_at = time.monotonic()
        else:
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
