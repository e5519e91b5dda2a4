"""What a write-path measurement is asked for (Plan) and what it gives (Result)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.measure.cpu import Cpu
from bench.measure.report import percentile

HOT_EVENTS = 100_000  # per hot SKU, stored before the hot workload starts


@dataclass(frozen=True)
class Plan:
    """How long to measure and warm up, on which PostgreSQL settings, and how long the hot
    SKUs' streams are before the hot workload."""

    seconds: float
    warmup_s: float
    durable: bool
    hot_events: int = HOT_EVENTS


@dataclass(frozen=True)
class Result:
    clients: int
    rate: float  # successful operations per second
    completed: int
    errors: int
    latencies_ms: list[float]
    cpu: Cpu
    first_error: str | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def server_cpu_ms_per_order(self) -> float:
        """Server CPU per accepted operation, over the measured window."""
        return self.cpu.server * 1000 / self.rate if self.rate else math.nan

    @property
    def p99_ms(self) -> float:
        return percentile(sorted(self.latencies_ms), 0.99)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "clients": self.clients,
            "per_s": round(self.rate, 1),
            "p50_ms": round(percentile(ordered, 0.50), 3),
            "p99_ms": round(percentile(ordered, 0.99), 3),
            "completed": self.completed,
            "errors": self.errors,
            "cpu_cores": {name: round(value, 2) for name, value in vars(self.cpu).items()},
            **(
                {"server_cpu_ms_per_order": round(self.server_cpu_ms_per_order, 3)}
                if self.cpu.server
                else {}  # pgbench: no server process of ours
            ),
            **self.extra,
        }
