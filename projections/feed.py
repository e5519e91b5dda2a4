"""The transports that deliver the log's events to a projector, and their protocol.

Two implement it: LogFeed here, the embedded transport, reading the event store's log in
this process (`orderflow dev`, rebuild catch-ups, tests); and KafkaFeed, a consumer group
reading the relay's topics (`orderflow project`). That one lives with the Kafka adapter
(its consumer module): it needs kafka-python, the settings and tracing, which read models
never import (docs/adr/0027-one-read-model-registry.md)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from projections.ports import EventSource
from projections.projector import Projector

log = logging.getLogger(__name__)


class Feed(Protocol):
    """Delivers events to one projector, each batch through `Projector.apply`, until
    stopped; a fault is retried, never the end of the feed."""

    def run(self) -> None:
        """Feeds until `stop` (blocks)."""
        ...

    def stop(self) -> None: ...


def run_feeds(feeds: Sequence[Feed]) -> Callable[[], None]:
    """Starts each feed in a thread; returns a function waiting for them all."""
    threads = [threading.Thread(target=f.run, name=f"feed-{n}") for n, f in enumerate(feeds)]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # wakes up for signals

    return join


class LogFeed:
    """Polls the log after the lowest position of the projector's read models and applies
    what is new."""

    def __init__(
        self, events: EventSource, runner: Projector, idle_s: float = 0.02, batch: int = 1000
    ) -> None:
        self.events = events
        self.runner = runner
        self.idle_s = idle_s
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def catch_up(self) -> int:
        """Applies everything appended so far; returns how many envelopes it read."""
        after = min(self.runner.positions().values(), default=0)
        seen = 0
        for envelopes in self.events.iterate(after, batch=self.batch):
            self.runner.apply(envelopes)
            seen += len(envelopes)
        return seen

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.catch_up() == 0:
                    self._stop.wait(self.idle_s)
            except Exception:  # keep feeding: a transient fault must not kill the thread
                log.exception("projection feed failed; retrying")
                self._stop.wait(1.0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="projection-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
