"""Where the CLI talks to people: messages and progress bars on stderr, so that stdout
carries only the data a script reads (tables, JSON, exports)."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def bar_columns(label: str) -> tuple[ProgressColumn, ...]:
    """A progress bar over event store positions."""
    return (
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed}/{task.total} positions"),
        TimeRemainingColumn(),
    )


def advance(bar: Progress, task: TaskID) -> Callable[[int, int], None]:
    """A rebuild's progress callback (positions done, head) moving `task` on `bar`."""

    def update(done: int, head: int) -> None:
        bar.update(task, completed=done, total=max(head, 1))

    return update
