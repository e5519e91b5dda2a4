"""Long-running loops (relay, projector) retry transient faults with exponential backoff
and jitter, and stop promptly: the backoff sleeps on their stop event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter
from tenacity.stop import stop_when_event_set


def run_until_stopped(
    step: Callable[[], None], stop: threading.Event, log: logging.Logger, what: str
) -> None:
    """Calls `step` (which returns when `stop` is set) again after every failure."""

    def report(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d): %r; backing off", what, state.attempt_number, failure)

    def nap(seconds: float) -> None:
        stop.wait(seconds)

    retrying = Retrying(
        retry=retry_if_exception_type(Exception),
        wait=wait_exponential_jitter(multiplier=0.2, max=10),
        stop=stop_when_event_set(stop),
        sleep=nap,
        before_sleep=report,
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                step()
    except Exception:  # tenacity's RetryError once stopped while failing: nothing to do
        log.info("%s stopped", what)
