"""Tabular CLI output: a Rich table for people, JSON (`--json`) for scripts.

Column names are never cut: when stdout is not a terminal (a pipe, a file, CI logs) Rich
would assume 80 columns and fold or ellipsise them, so the table gets the width it needs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON array of rows, for scripts.")]


def emit(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, as_json: bool) -> None:
    """Rows as a table on stdout, or with `as_json` as a JSON array of objects keyed by column
    (values keep their JSON types; anything else is written as its string)."""
    materialised = [list(row) for row in rows]
    if as_json:
        records = [dict(zip(columns, row, strict=True)) for row in materialised]
        sys.stdout.write(json.dumps(records, default=str) + "\n")
        return
    table = Table(*columns)
    for column in table.columns:
        column.no_wrap = True
    for row in materialised:
        table.add_row(*("-" if v is None else str(v) for v in row))
    terminal = sys.stdout.isatty()
    Console(width=None if terminal else 10_000, soft_wrap=not terminal).print(table)
