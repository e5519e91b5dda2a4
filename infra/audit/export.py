"""Exported events to a text stream and back, as JSON lines or CSV (data as a JSON column).

Every event carries its link hash and stored bytes; the file ends with a head line (the
last position, its hash, the number of events), so a file cut short is noticed. Signed
checkpoints of the store come first, so a reader can check the chain passes through them."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import chain
from typing import Any, TextIO, get_origin

from pydantic import ValidationError

from domain.base_error import OrderFlowError
from infra.audit.chain import GENESIS
from schemas.audit import CheckpointFile, ExportedEvent, ExportHead

CSV_COLUMNS = [name for name in ExportedEvent.model_fields if name != "data"] + ["data"]
# columns holding lists (`sealed`, `redacted`): JSON text in a CSV cell, like `data`
LIST_COLUMNS = frozenset(
    name
    for name, field in ExportedEvent.model_fields.items()
    if get_origin(field.annotation) is list
)
HEAD_TYPE = "export.head"  # the `type` of the CSV head row
CHECKPOINT_TYPE = "export.checkpoint"  # the `type` of a CSV checkpoint row
ExportItem = ExportedEvent | ExportHead | CheckpointFile


class UnreadableExport(OrderFlowError):
    code = "unreadable-export"

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


class ExportWriter:
    def __init__(self, out: TextIO, format_: str) -> None:
        self.out, self.format = out, format_
        self.events, self.last = 0, ExportHead(position=0, hash=GENESIS.hex(), events=0)
        self._csv: csv.DictWriter[str] | None = None
        if format_ == "csv":
            self._csv = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
            self._csv.writeheader()

    def carry(self, checkpoint: CheckpointFile) -> None:
        """A signed checkpoint, before the events: a reader checks the chain through it."""
        if self._csv is None:
            print(json.dumps({"checkpoint": checkpoint.model_dump(mode="json")}), file=self.out)
        else:
            self._csv.writerow(
                {
                    "type": CHECKPOINT_TYPE,
                    "position": checkpoint.position,
                    "hash": checkpoint.head_hash,
                    "data": checkpoint.model_dump_json(),
                }
            )

    def write(self, event: ExportedEvent) -> None:
        if self._csv is None:
            print(event.model_dump_json(), file=self.out)
        else:
            row = event.model_dump(mode="json")
            row["data"] = json.dumps(row["data"], separators=(",", ":"), sort_keys=True)
            for column in LIST_COLUMNS:
                row[column] = json.dumps(row[column])
            self._csv.writerow(row)
        self.events += 1
        self.last = ExportHead(position=event.position, hash=event.hash, events=self.events)

    def finish(self) -> ExportHead:
        """The head line: what a reader checks the file's end against."""
        if self._csv is None:
            print(json.dumps({"head": self.last.model_dump()}), file=self.out)
        else:
            self._csv.writerow(
                {
                    "type": HEAD_TYPE,
                    "position": self.last.position,
                    "hash": self.last.hash,
                    "data": json.dumps({"events": self.last.events}),
                }
            )
        return self.last


def _csv_item(row: dict[str, Any]) -> ExportItem:
    if row.get("type") == CHECKPOINT_TYPE:
        return CheckpointFile.model_validate_json(row["data"])
    if row.get("type") == HEAD_TYPE:
        events = json.loads(row["data"])["events"]
        return ExportHead(position=row["position"], hash=row["hash"], events=events)
    fields = {k: (v if v != "" else None) for k, v in row.items()}
    fields["data"] = json.loads(row["data"])
    for column in LIST_COLUMNS & fields.keys():
        fields[column] = json.loads(row[column] or "[]")
    return ExportedEvent.model_validate(fields)


def _jsonl_item(line: str) -> ExportItem:
    fields = json.loads(line)
    if isinstance(fields, dict) and set(fields) == {"head"}:
        return ExportHead.model_validate(fields["head"])
    if isinstance(fields, dict) and set(fields) == {"checkpoint"}:
        return CheckpointFile.model_validate(fields["checkpoint"])
    return ExportedEvent.model_validate(fields)


def read_export(lines: Iterable[str]) -> Iterator[ExportItem]:
    """Items in file order, one line in memory at a time; JSON lines or CSV, told apart
    by the first line."""
    stream = iter(lines)
    first = next(stream, "")
    if not first.strip():
        return
    items: Iterable[tuple[int, Callable[[], ExportItem]]]
    if first.lstrip().startswith("{"):
        items = (
            (number, partial(_jsonl_item, line))
            for number, line in enumerate(chain([first], stream), 1)
        )
    else:
        columns = next(csv.reader([first]))
        rows = csv.DictReader(stream, fieldnames=columns)
        items = ((number, partial(_csv_item, row)) for number, row in enumerate(rows, 2))
    for number, parse in items:
        try:
            yield parse()
        except (ValueError, KeyError, TypeError, ValidationError) as bad:
            raise UnreadableExport(number, str(bad).splitlines()[0]) from None
