"""Snapshot intervals per aggregate type, operators' snapshots (take, status, clear) on both
stores and from the CLI, and a snapshot that fails never failing the command that caused it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.ports import CommandContext
from commands.results import ItemFacts
from domain.inventory import InventoryItem
from infra.bootstrap import write_side
from infra.cli import app as cli
from infra.eventstore.event_store import open_event_store
from infra.eventstore.snapshots import Snapshots, SnapshotStatus
from infra.settings import Settings
from schemas.commands import ReceiveStock
from tests.aggregate_state import public_state
from tests.scenarios import save_every_event_type

CONTEXT = CommandContext(correlation_id="snapshots", actor="test")


def test_intervals_are_set_per_aggregate_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORDERFLOW_SNAPSHOT_INTERVAL_INVENTORY", raising=False)
    monkeypatch.setenv("ORDERFLOW_SNAPSHOT_INTERVAL", "100")
    monkeypatch.setenv("ORDERFLOW_SNAPSHOT_INTERVAL_ORDER", "0")
    assert Settings().snapshot_intervals == {"inventory": 100}
    monkeypatch.setenv("ORDERFLOW_SNAPSHOT_INTERVAL_ORDER", "20")
    monkeypatch.delenv("ORDERFLOW_SNAPSHOT_INTERVAL")
    assert Settings().snapshot_intervals == {"order": 20, "inventory": 200}
    monkeypatch.delenv("ORDERFLOW_SNAPSHOT_INTERVAL_ORDER")
    assert Settings().snapshot_intervals == {"inventory": 200}  # on by default: hot SKUs
    monkeypatch.setenv("ORDERFLOW_SNAPSHOT_INTERVAL_INVENTORY", "0")
    assert Settings().snapshot_intervals == {}


def test_the_event_store_snapshots_each_type_at_its_interval(tmp_path: Path) -> None:
    chosen = Settings(data_dir=tmp_path, snapshot_interval=3, snapshot_interval_order=0)
    app = open_event_store(chosen)
    assert type(app).snapshotting_intervals == {InventoryItem: 3}
    orders = save_every_event_type(app)
    assert app.snapshots is not None
    item_id = InventoryItem.create_id("A")
    item = [s.originator_version for s in app.snapshots.get(item_id)]
    assert item == list(range(3, app.repository.get(item_id).version + 1, 3))
    assert len(item) >= 3
    assert not any(list(app.snapshots.get(order.id)) for order in orders)
    app.close()
    plain = open_event_store(Settings(data_dir=tmp_path, snapshot_interval_inventory=0))
    assert plain.snapshots is None
    plain.close()


def test_operators_take_snapshots_see_how_far_behind_they_are_and_drop_them(
    settings: Settings,
) -> None:
    side = write_side(settings)  # no interval: nothing snapshots by itself
    orders = save_every_event_type(side.app)
    app = open_event_store(settings, snapshots=True)
    ops = Snapshots(app)
    assert ops.status() == []
    assert list(ops.skus()) == ["A"]

    item_id, order = InventoryItem.create_id("A"), orders[0]
    item_head = int(side.app.repository.get(item_id).version)
    assert ops.take(item_id) == item_head
    assert ops.take(item_id) is None, "that version has its snapshot already"
    assert ops.take(order.id) == order.version
    side.bus.handle(ReceiveStock(sku="A", quantity=5), CONTEXT)

    found = {s.aggregate_id: s for s in ops.status()}
    assert found == {
        item_id: SnapshotStatus(item_id, "inventory", 1, item_head, item_head + 1),
        order.id: SnapshotStatus(order.id, "order", 1, order.version, order.version),
    }
    assert found[item_id].behind == 1
    for aggregate_id in found:  # from the snapshot, as replayed from the first event
        assert public_state(app.repository.get(aggregate_id)) == public_state(
            side.app.repository.get(aggregate_id)
        )
    assert ops.clear() == 2
    assert ops.status() == []
    app.close()
    side.close()


def test_a_snapshot_that_fails_does_not_fail_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    side = write_side(Settings(data_dir=tmp_path, snapshot_interval=1))
    item = InventoryItem(sku="A", name="a", unit_price_cents=1)
    side.app.save(item)
    assert side.app.snapshots is not None

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(side.app.snapshots, "put", broken)
    with caplog.at_level(logging.ERROR, logger="infra.eventstore.event_store"):
        answer = side.bus.handle(ReceiveStock(sku="A", quantity=2), CONTEXT)
    assert isinstance(answer.result, ItemFacts)
    assert answer.result.on_hand == 2
    assert "no snapshot of" in caplog.text
    assert side.app.repository.get(item.id).version == 2
    monkeypatch.undo()
    assert side.app.snapshot(item.id, 1) is False  # the library took version 1 already
    side.app.take_snapshot(item.id, 1)  # and taking it again is no error
    side.close()


def test_the_cli_takes_and_reports_snapshots(tmp_path: Path) -> None:
    side = write_side(Settings(data_dir=tmp_path))
    orders = save_every_event_type(side.app)
    item_version = int(side.app.repository.get(InventoryItem.create_id("A")).version)
    side.close()
    runner = CliRunner()
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(tmp_path), COLUMNS="200")

    taken = runner.invoke(
        cli, ["snapshots", "take", "--all-skus", "--order", str(orders[0].id)], env=env
    )
    assert taken.exit_code == 0, taken.output
    assert f"SKU A: snapshot at version {item_version}" in taken.output
    assert f"order {orders[0].id}: snapshot at version {orders[0].version}" in taken.output

    status = runner.invoke(cli, ["snapshots", "status"], env=env)
    assert status.exit_code == 0, status.output
    row = next(line for line in status.output.splitlines() if str(orders[0].id) in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    version = str(orders[0].version)
    assert cells == [str(orders[0].id), "order", "1", version, version, "0"]
    assert "2 snapshots of 2 aggregates; inventory every 200 events" in status.output

    unknown = runner.invoke(cli, ["snapshots", "take", "--sku", "NOPE"], env=env)
    assert unknown.exit_code != 0
    assert "no SKU NOPE" in unknown.output
    cleared = runner.invoke(cli, ["snapshots", "clear"], env=env)
    assert "dropped 2 snapshots" in cleared.output
