"""A stage of the projection-path bench: what it is asked (Plan), how it is timed and what
it gives (Stage)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.measure.cpu import ProcessClock
from bench.measure.report import status

STAGE_TIMEOUT_S = 900.0  # a stage that takes longer has hung
PROGRESS_EVERY_S = 30.0


@dataclass(frozen=True)
class Plan:
    events: int  # at least this many
    projector_budget_s: float


@dataclass(frozen=True)
class Stage:
    """One measurement. `seconds` is the rate's window; `wall_s` and the CPU figures cover
    the whole stage, including start-up such as joining a consumer group."""

    name: str
    what: str
    events: int
    seconds: float
    wall_s: float
    python_cores: float
    machine_cores: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.rate, 1),
            "wall_s": round(self.wall_s, 3),
            "cpu_cores": {
                "python": round(self.python_cores, 2),
                "machine": round(self.machine_cores, 2),
            },
            **self.extra,
        }


@contextmanager
def measured(results: list[Stage], name: str, what: str) -> Iterator[Callable[..., None]]:
    """Times the block; the block reports its events (and, optionally, its own window)."""
    start = ProcessClock.read()
    found: dict[str, Any] = {}

    def done(events: int, seconds: float | None = None, **extra: Any) -> None:
        found.update(events=events, seconds=seconds, extra=extra)

    yield done
    end = ProcessClock.read()
    wall = end.wall - start.wall
    if "events" not in found:
        raise RuntimeError(f"stage {name} reported no events")
    results.append(
        Stage(
            name,
            what,
            found["events"],
            found["seconds"] if found["seconds"] is not None else wall,
            wall,
            (end.python - start.python) / wall,
            (end.machine - start.machine) / wall,
            found["extra"],
        )
    )
    status.print(f"  {name}: {found['events']:,} events in {wall:.1f} s")


def wait_until(
    condition: Callable[[], bool],
    what: str,
    limit_s: float = STAGE_TIMEOUT_S,
    interval: float = 0.05,
    progress: Callable[[], str] | None = None,
) -> bool:
    """Whether the condition came true within the limit."""
    began = time.monotonic()
    said = began
    while not condition():
        now = time.monotonic()
        if now - began > limit_s:
            return False
        if progress is not None and now - said >= PROGRESS_EVERY_S:
            status.print(f"  {what}: {progress()} after {now - began:.0f} s")
            said = now
        time.sleep(interval)
    return True
