"""The wire contract: committed JSON Schemas match the code, and every event the domain
emits fits its payload model exactly (no missing, extra or retyped field)."""

from __future__ import annotations

import json
from pathlib import Path

from infra.bootstrap import write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.events import PAYLOADS
from schemas.export import DIRECTORY, json_schemas, render
from tests.scenarios import save_every_event_type


def test_the_committed_json_schemas_match_the_code() -> None:
    expected = json_schemas()
    committed = {str(p.relative_to(DIRECTORY)): p.read_text() for p in DIRECTORY.rglob("*.json")}
    assert sorted(committed) == sorted(expected), "run `orderflow schemas export`"
    for name, schema in expected.items():
        assert committed[name] == render(schema), f"{name} drifted: run `orderflow schemas export`"


def every_event_type(tmp_path: Path) -> list[Envelope]:
    side = write_side(Settings(data_dir=tmp_path, jwt_secret="s" * 32))
    save_every_event_type(side.app)
    envelopes = [e for batch in EventLog(side.app).iterate(0) for e in batch]
    side.close()
    return envelopes


def test_every_event_type_fits_its_payload_model(tmp_path: Path) -> None:
    envelopes = every_event_type(tmp_path)
    assert {e.type for e in envelopes} == set(PAYLOADS)
    for envelope in envelopes:
        PAYLOADS[envelope.type].model_validate(envelope.data)
        assert Envelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_envelopes_carry_identity_order_and_metadata(tmp_path: Path) -> None:
    envelopes = every_event_type(tmp_path)
    assert [e.position for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert [e.previous_position for e in envelopes] == list(range(len(envelopes)))
    assert len({e.event_id for e in envelopes}) == len(envelopes)
    by_aggregate: dict[str, list[int]] = {}
    for e in envelopes:
        by_aggregate.setdefault(str(e.aggregate_id), []).append(e.version)
    assert all(v == list(range(1, len(v) + 1)) for v in by_aggregate.values())
    sample = json.loads(envelopes[0].model_dump_json())
    assert set(sample) >= {
        "event_id",
        "type",
        "aggregate_type",
        "aggregate_id",
        "version",
        "position",
        "occurred_at",
        "schema_version",
        "correlation_id",
        "causation_id",
        "data",
    }
