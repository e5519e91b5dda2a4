"""Envelopes to a text stream, as JSON lines or CSV (data as a JSON column)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from typing import TextIO

from schemas.envelope import Envelope

CSV_COLUMNS = [name for name in Envelope.model_fields if name != "data"] + ["data"]


def envelope_writer(out: TextIO, format_: str) -> Callable[[Envelope], None]:
    if format_ == "jsonl":
        return lambda envelope: print(envelope.model_dump_json(), file=out)
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()

    def write_row(envelope: Envelope) -> None:
        row = envelope.model_dump(mode="json")
        row["data"] = json.dumps(row["data"], separators=(",", ":"), sort_keys=True)
        writer.writerow(row)

    return write_row
