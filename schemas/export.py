"""The JSON Schemas of the envelope and of every event payload, as committed files.

Consumers in other languages generate their types from these; the test suite fails when
the code and the committed files disagree (`orderflow schemas export` rewrites them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.envelope import Envelope
from schemas.events import PAYLOADS

DIRECTORY = Path(__file__).parent / "json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """Relative file name -> schema."""
    found = {"envelope.schema.json": Envelope.model_json_schema()}
    for event_type, payload in PAYLOADS.items():
        found[f"events/{event_type}.v1.schema.json"] = payload.model_json_schema()
    return found


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def export(directory: Path = DIRECTORY) -> list[Path]:
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(path)
    return written
