"""Embedded transport: projections fed straight from the notification log, in-process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

from projections.ports import EventSource
from schemas.envelope import Envelope

log = logging.getLogger(__name__)


class Applier(Protocol):
    """What a feed drives: SqlProjector (SQL) and ReportingProjector (ClickHouse)."""

    def positions(self) -> dict[str, int]: ...
    def apply(self, envelopes: Sequence[Envelope]) -> int: ...


class LogFeed:
    """Polls the log after the lowest projection position and applies what is new."""

    def __init__(
        self, events: EventSource, runner: Applier, idle_s: float = 0.02, batch: int = 1000
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
