"""Keeps the library's aggregate cache current from the notification log, in one query
per batch instead of one fast-forward query per aggregate and batch.

Appends commit in position order (the library's table lock, ADR 0010): once a position
is visible, every lower one is committed or gone. So the events after the last position
this process read are exactly what anyone appended since; each one of a cached aggregate
is applied to it, in version order. What is not cached is neither decoded nor kept. A
cached aggregate that would skip a version is dropped (the next load rebuilds it), and a
process that fell far behind drops the whole cache rather than replay the gap."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from eventsourcing.domain import CanMutateAggregate

from infra.eventstore.event_store import OrderFlowApplication

PAGE = 1000
MAX_GAP = 10_000


class LogFollower:
    def __init__(self, app: OrderFlowApplication) -> None:
        self._app = app
        self._seen: int | None = None  # read at the first batch: the database may be down now

    def catch_up(self) -> None:
        cache: Any = self._app.repository.cache
        if cache is None:
            return
        recorder = self._app.recorder
        if self._seen is None:  # what was cached before is current to an unknown position
            self._seen = recorder.max_notification_id() or 0
            _drop_all(cache)
            return
        followed = 0
        while True:
            page = recorder.select_notifications(self._seen, PAGE, inclusive_of_start=False)
            for notification in page:
                self._apply(cache, notification)
                self._seen = notification.id
            followed += len(page)
            if len(page) < PAGE:
                return
            if followed >= MAX_GAP:
                _drop_all(cache)
                self._seen = recorder.max_notification_id() or self._seen
                return

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
