"""How every bench reports: tables on stdout, progress on stderr, warnings in red, and a
JSON line last that tooling reads."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

# Other work above this many cores, before the run or during a measurement, skews figures.
BUSY_WARNING_CORES = 0.25

console = Console(width=110)  # wide enough for the tables even when piped to a file
status = Console(stderr=True, highlight=False)


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def ratio_table(ratios: dict[str, float]) -> Table:
    table = Table(title="Ratios (1.0 = as fast as the baseline)")
    table.add_column("ratio")
    table.add_column("value", justify="right")
    for name, value in ratios.items():
        table.add_row(name, f"{value:.3f}")
    return table


def busy_before_warning(busy_before: float) -> list[str]:
    """The warning, if any, that other work was using the machine when the run began."""
    if busy_before > BUSY_WARNING_CORES:
        return ["the machine was busy before the run started: the figures are skewed"]
    return []


def json_line(figures: dict[str, Any]) -> str:
    return json.dumps(figures, separators=(",", ":"))


def print_report(
    tables: Iterable[Table], notes: Iterable[str], warnings: Iterable[str], figures: dict[str, Any]
) -> None:
    """The tables, the notes as a list, the warnings in red, then the JSON line."""
    for table in tables:
        console.print(table)
    for note in notes:
        console.print(f"- {note}", highlight=False)
    for warning in warnings:
        console.print(f"[bold red]! {warning}", highlight=False)
    print(json_line(figures), flush=True)
