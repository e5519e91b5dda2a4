"""The JSON Schemas of the envelope and of every event payload, as committed files.

Consumers in other languages generate their types from these; the test suite fails when
the code and the committed files disagree (`orderflow schemas export` rewrites them) and
when the code breaks a committed version (schemas/compatibility.py). Each version of a
payload has its own file, `events/<type>.v<N>.schema.json`; an envelope's
`schema_version` names the one its `data` follows."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from schemas.compatibility import Schema, SchemaKey, gate
from schemas.envelope import Envelope
from schemas.events import PAYLOAD_VERSIONS

DIRECTORY = Path(__file__).parent / "json"
_EVENT_FILE = re.compile(
    r"^events/(?P<type>[a-z_]+\.[a-z_]+)\.v(?P<version>[1-9][0-9]*)\.schema\.json$"
)


class IncompatibleSchemas(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def event_file(event_type: str, version: int) -> str:
    return f"events/{event_type}.v{version}.schema.json"


def event_schemas() -> dict[SchemaKey, Schema]:
    """(type, version) -> the code's schema of that payload version."""
    return {
        (event_type, version): payload.model_json_schema()
        for event_type, versions in PAYLOAD_VERSIONS.items()
        for version, payload in versions.items()
    }


def json_schemas() -> dict[str, dict[str, Any]]:
    """Relative file name -> schema."""
    found = {"envelope.schema.json": Envelope.model_json_schema()}
    for (event_type, version), schema in event_schemas().items():
        found[event_file(event_type, version)] = schema
    return found


def committed_event_schemas(directory: Path = DIRECTORY) -> dict[SchemaKey, Schema]:
    found: dict[SchemaKey, Schema] = {}
    for path in sorted(directory.glob("events/*.schema.json")):
        match = _EVENT_FILE.match(path.relative_to(directory).as_posix())
        if match is None:
            raise ValueError(f"{path}: not named events/<type>.v<N>.schema.json")
        found[(match["type"], int(match["version"]))] = json.loads(path.read_text())
    return found


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def check(upcasters: Collection[SchemaKey], directory: Path = DIRECTORY) -> list[str]:
    """The compatibility gate over the files in `directory` and the code."""
    return gate(committed_event_schemas(directory), event_schemas(), upcasters)


def export(
    directory: Path = DIRECTORY, upcasters: Collection[SchemaKey] | None = None
) -> list[Path]:
    """Writes every schema. Given the domain's upcasters, refuses (IncompatibleSchemas,
    nothing written) when the code breaks a committed version."""
    if upcasters is not None and (problems := check(upcasters, directory)):
        raise IncompatibleSchemas(problems)
    written = []
    for name, schema in json_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema))
        written.append(path)
    return written
