"""The stored fixture of the past: an event store written by schema version 1 (see
tests/fixtures/make_v1_store.py) still loads, as aggregates and as read models, exactly as
that code computed them; its events reach consumers in the newest shape."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

from domain.inventory import InventoryItem
from domain.order import Order, OrderStatus
from domain.versions import event_class
from infra.audit.queries import Audit
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.readstore.store import SQLiteReadStore
from infra.settings import Settings
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.envelope import Envelope
from tests.aggregate_state import public_state
from tests.folding import rows

FIXTURES = Path(__file__).parents[1] / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "v1_expected.json").read_text())
STATES: dict[str, list[dict[str, Any]]] = EXPECTED["states"]
V1_EXPORT = [
    Envelope.model_validate_json(line)
    for line in (FIXTURES / "v1_export.jsonl").read_text().splitlines()
]
# What later versions added to the aggregates' state, and its value for what version 1 wrote.
ADDED: dict[str, dict[str, Any]] = {
    "order": {"shipping_address": None, "unapplied_payments": {}},
    "inventory": {},
}


def copy_of_the_past(data_dir: Path) -> Settings:
    """The committed file is never opened in place: the library would write to it."""
    data_dir.mkdir()
    shutil.copyfile(FIXTURES / "v1_events.sqlite", data_dir / "events.sqlite")
    return Settings(data_dir=data_dir, jwt_secret="f" * 32)


@pytest.fixture(params=["replayed", "from snapshots"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrderFlowApplication]:
    settings = copy_of_the_past(tmp_path / "store")
    if request.param == "from snapshots":  # the two snapshots version 1 took, and no new ones
        settings = settings.model_copy(update={"snapshot_interval": 10_000})
    opened = open_event_store(settings)
    yield opened
    opened.close()


def aggregate_type(state: dict[str, Any]) -> str:
    return "inventory" if "sku" in state and "reservations" in state else "order"


def assert_same(found: Aggregate, expected: dict[str, Any]) -> None:
    state = public_state(found)
    added = ADDED[aggregate_type(expected)]
    assert {k: v for k, v in state.items() if k not in added} == expected
    assert {k: state[k] for k in added} == added
    if isinstance(found, Order):
        assert isinstance(found.status, OrderStatus)


def test_every_aggregate_loads_as_version_1_computed_it_at_every_version(
    app: OrderFlowApplication,
) -> None:
    assert len(STATES) == 13
    assert sum(len(v) for v in STATES.values()) == 62
    for aggregate_id, versions in STATES.items():
        assert_same(app.repository.get(UUID(aggregate_id)), versions[-1])
        for version, expected in enumerate(versions, start=1):
            assert_same(app.repository.get(UUID(aggregate_id), version=version), expected)


def test_state_as_of_each_event_is_version_1s_state_then(app: OrderFlowApplication) -> None:
    audit = Audit(app)
    for envelope in V1_EXPORT:
        moment, aggregate_id = envelope.occurred_at, envelope.aggregate_id
        found: Aggregate = (
            audit.state(Order, aggregate_id, as_of=moment)
            if envelope.aggregate_type == "order"
            else audit.state(InventoryItem, aggregate_id, as_of=moment)
        )
        assert_same(found, STATES[str(envelope.aggregate_id)][envelope.version - 1])


def test_the_snapshots_version_1_took_are_read(tmp_path: Path) -> None:
    settings = copy_of_the_past(tmp_path / "store").model_copy(update={"snapshot_interval": 1})
    app = open_event_store(settings)
    assert app.snapshots is not None
    taken = {
        str(s.originator_id): s.originator_version
        for aggregate_id in STATES
        for s in app.snapshots.get(UUID(aggregate_id))
    }
    assert sorted(taken.values()) == [3, 6]  # an order after payment, KB-101 mid-history
    for aggregate_id, version in taken.items():
        # from the snapshot alone, without the events before it
        found: Aggregate = app.repository.get(UUID(aggregate_id), version=version)
        assert_same(found, STATES[aggregate_id][version - 1])
    app.close()


def test_the_read_models_are_the_ones_version_1_projected(tmp_path: Path) -> None:
    app = open_event_store(copy_of_the_past(tmp_path / "store"))
    store = SQLiteReadStore(tmp_path / "read.sqlite")
    runner = SqlProjector(store, SQL_READ_MODELS)
    runner.setup()
    for batch in EventLog(app).iterate(0):
        runner.apply(batch)
    expected_tables: dict[str, list[dict[str, Any]]] = EXPECTED["read_models"]
    assert set(expected_tables) == {"orders", "order_lines", "inventory_levels", "customer_orders"}
    for table, expected in expected_tables.items():
        found = json.loads(json.dumps(rows(store, table), default=str))
        # a later version may add columns; the ones version 1 had are the same
        assert [{k: row[k] for k in expected[0]} for row in found] == expected, table
    store.close()
    app.close()


def test_consumers_get_version_1_events_in_the_newest_shape(tmp_path: Path) -> None:
    app = open_event_store(copy_of_the_past(tmp_path / "store"))
    now = [e for batch in EventLog(app).iterate(0) for e in batch]
    app.close()
    assert len(now) == len(V1_EXPORT) == 62
    for then, upcast in zip(V1_EXPORT, now, strict=True):
        assert then.schema_version == 1
        if then.type == "order.created":
            assert upcast.schema_version == 2
            assert upcast.data == {**then.data, "shipping_address": None}
            assert upcast.model_copy(update={"schema_version": 1, "data": then.data}) == then
        else:
            assert upcast == then


def test_a_version_1_export_imports_and_loads_the_same(tmp_path: Path) -> None:
    app = open_event_store(Settings(data_dir=tmp_path / "empty", jwt_secret="f" * 32))
    audit = Audit(app)
    assert audit.import_envelopes(V1_EXPORT) == 62
    assert audit.verify().ok
    for aggregate_id, versions in STATES.items():
        assert_same(app.repository.get(UUID(aggregate_id)), versions[-1])
    assert [e.schema_version for e in audit.stream()] == [
        2 if e.type == "order.created" else 1 for e in V1_EXPORT
    ]
    app.close()


@pytest.mark.parametrize("upcaster", ["event", "snapshot"])
def test_without_its_upcaster_version_1_does_not_load(
    upcaster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upcasters are what makes the past load: take one away and it fails."""
    settings = copy_of_the_past(tmp_path / "store")
    if upcaster == "event":
        monkeypatch.delattr(event_class(Order, "order.created"), "upcast_v1_v2")
        # from events alone: with a snapshot store the order would load from its snapshot
        settings = settings.model_copy(update={"snapshot_interval_inventory": 0})
    else:
        monkeypatch.delattr(Order, "upcast_v1_v2")
        settings = settings.model_copy(update={"snapshot_interval": 10_000})
    with closing(sqlite3.connect(settings.sqlite_path)) as db:
        snapshotted = [
            UUID(row[0]) for row in db.execute("SELECT originator_id FROM stored_snapshots")
        ]
    order_id = next(i for i in snapshotted if aggregate_type(STATES[str(i)][0]) == "order")
    app = open_event_store(settings)
    with pytest.raises(AttributeError, match="upcast_v1_v2"):
        app.repository.get(order_id)
    app.close()
