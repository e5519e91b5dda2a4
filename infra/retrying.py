"""Long-running loops (relay, projector, worker) retry faults with exponential backoff and
jitter, and stop promptly: the backoff sleeps on their stop event. A loop that ran well
for a while before failing starts its backoff afresh: a new fault, not the old one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_any,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base, stop_when_event_set

T = TypeVar("T")
HEALTHY_S = 30.0  # a run this long before a failure resets the backoff
# The longest wait between tries. Short, so that a loop notices within a second that the
# database or broker is back (the promise: working again within 5 s); a try that fails
# costs little (a refused connection), and each logs one warning.
MAX_WAIT_S = 1.0


def _backoff() -> wait_exponential_jitter:
    return wait_exponential_jitter(multiplier=0.2, max=MAX_WAIT_S, jitter=0.2)


def _napping_on(stop: threading.Event) -> Callable[[float], None]:
    """A backoff's sleep that ends early when `stop` is set."""

    def nap(seconds: float) -> None:
        stop.wait(seconds)

    return nap


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

    while not stop.is_set():
        retrying = Retrying(
            retry=retry_if_exception_type(Exception),
            wait=_backoff(),
            stop=stop_any(stop_when_event_set(stop), RanLong()),
            sleep=_napping_on(stop),
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


def retried_in_place(
    call: Callable[[], T], stop: threading.Event, log: logging.Logger, what: str, within_s: float
) -> T:
    """`call()`, tried again with the same backoff for up to `within_s` (or until `stop`),
    for a step whose surroundings are costly to rebuild; then its last fault is raised."""

    def report(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (try %d): %r; trying again", what, state.attempt_number, failure)

    retrying = Retrying(
        retry=retry_if_exception_type(Exception),
        wait=_backoff(),
        stop=stop_any(stop_when_event_set(stop), stop_after_delay(within_s)),
        sleep=_napping_on(stop),
        before_sleep=report,
        reraise=True,
    )
    return retrying(call)
