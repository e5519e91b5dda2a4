"""Long-running loops (relay, projector, worker) retry faults with exponential backoff and
jitter, and stop promptly: the backoff sleeps on their stop event. A loop that ran well
for a while before failing starts its backoff afresh: a new fault, not the old one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base, stop_when_event_set

HEALTHY_S = 30.0  # a run this long before a failure resets the backoff


def run_until_stopped(
    step: Callable[[], None], stop: threading.Event, log: logging.Logger, what: str
) -> None:
    """Calls `step` (which returns when `stop` is set) again after every failure."""
    started = 0.0

    def report(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d): %r; backing off", what, state.attempt_number, failure)

    class RanLong(stop_base):
        def __call__(self, retry_state: RetryCallState) -> bool:
            return time.monotonic() - started > HEALTHY_S

    def nap(seconds: float) -> None:
        stop.wait(seconds)

    while not stop.is_set():
        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential_jitter(multiplier=0.2, max=10),
            stop=stop_any(stop_when_event_set(stop), RanLong()),
            sleep=nap,
            before_sleep=report,
        )
        try:
            for attempt in retrying:
                with attempt:
                    started = time.monotonic()
                    step()
            return  # the step returned: it was asked to stop
        except RetryError as gave_up:
            log.warning(
                "%s failed after a healthy run: %r; backoff starts afresh",
                what,
                gave_up.last_attempt.exception(),
            )
