"""The command bus's Prometheus metrics, in the default registry, exported by every
process that handles commands (write API, worker, `dev`)."""

from __future__ import annotations

import time
from functools import lru_cache
from types import TracebackType

from prometheus_client import Counter, Histogram

from commands.errors import ConcurrencyConflict
from domain.base_error import OrderFlowError

# sub-millisecond replays to multi-second contended commits
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# the storage drivers' errors for "not reachable now", named so the command layer needs no
# driver: the library's OperationalError and InterfaceError, psycopg_pool's PoolTimeout
_UNAVAILABLE = frozenset({"OperationalError", "InterfaceError", "PoolTimeout"})

COMMAND_LATENCY = Histogram(
    "orderflow_command_duration_seconds",
    "Time to handle a command on the bus, retries included, by command and outcome "
    "(ok, replayed, rejected, conflict, unavailable, error).",
    ["command", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
IDEMPOTENCY_HITS = Counter(
    "orderflow_idempotency_hits_total",
    "Commands answered from a stored answer (same Idempotency-Key, same body).",
    ["command"],
)


def outcome_of(failure: BaseException) -> str:
    if isinstance(failure, ConcurrencyConflict):
        return "conflict"
    if isinstance(failure, OrderFlowError):
        return "rejected"
    if _UNAVAILABLE & {k.__name__ for k in type(failure).__mro__}:
        return "unavailable"
    return "error"


class Timing:
    """Observes a command's latency on leaving the block, with the outcome the block set,
    or its error's. A class rather than a generator: entering and leaving a generator's
    context manager showed in a command's profile (ADR 0016, session 25)."""

    outcome = "ok"

    def __init__(self, command: str) -> None:
        self._command = command
        self._started = time.perf_counter()

    def __enter__(self) -> Timing:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        failure: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if failure is not None:
            self.outcome = outcome_of(failure)
        _latency(self._command, self.outcome).observe(time.perf_counter() - self._started)


def timed_command(command: str) -> Timing:
    return Timing(command)


# The labelled child per command and outcome, kept: `labels` validates and locks on every
# call, a hundredth of a command's CPU (ADR 0016, session 25). Both label sets are small.
@lru_cache(maxsize=1024)
def _latency(command: str, outcome: str) -> Histogram:
    return COMMAND_LATENCY.labels(command, outcome)
