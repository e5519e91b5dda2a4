"""How `projections verify` and `rebuild --check` print a comparison: per table the row
counts and digests of both sides, then the first differing keys with both rows."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from projections.ports import Row
from projections.verify import Comparison


def _row(row: Row | None) -> str:
    return "(no row)" if row is None else json.dumps(row, default=str, sort_keys=True)


def show(comparison: Comparison, out: Console) -> None:
    verdict = "equal" if comparison.equal else "DIFFERENT"
    out.print(
        f"{comparison.projection}: rebuilt and live at position {comparison.position}: {verdict}",
        highlight=False,
    )
    table = Table("table", "live rows", "rebuilt rows", "live digest", "rebuilt digest", "differ")
    for t in comparison.tables:
        table.add_row(
            t.table,
            str(t.live_rows),
            str(t.rebuilt_rows),
            t.live_digest,
            t.rebuilt_digest,
            str(t.differing),
        )
    out.print(table)
    for t in comparison.tables:
        for mismatch in t.first:
            key = json.dumps(mismatch.key, default=str, sort_keys=True)
            out.print(f"{t.table} {key}", highlight=False, soft_wrap=True)
            out.print(f"  live:    {_row(mismatch.live)}", highlight=False, soft_wrap=True)
            out.print(f"  rebuilt: {_row(mismatch.rebuilt)}", highlight=False, soft_wrap=True)
        if t.differing > len(t.first):
            out.print(f"{t.table}: {t.differing - len(t.first)} more differing keys")
