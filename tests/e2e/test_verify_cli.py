"""`orderflow projections verify` and `rebuild --check` on an embedded data directory:
exit codes, the differing key with both rows, and a swap only when told."""

from __future__ import annotations

import json
from pathlib import Path

from commands.demo import load_demo
from domain.inventory import InventoryItem
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.feed import LogFeed
from tests.e2e.test_projection_cli import orderflow


def on_hand(settings: Settings, sku: str) -> tuple[int, int]:
    """(live read model, aggregate from the event store) for one SKU."""
    writes, reads = write_side(settings), read_side(settings, reports=False)
    try:
        with reads.store.read() as tx:
            row = tx.one("SELECT on_hand FROM inventory_levels WHERE sku = %s", (sku,))
        item: object = writes.app.repository.get(InventoryItem.create_id(sku))
        assert isinstance(item, InventoryItem)
        assert row is not None
        return int(row["on_hand"]), item.on_hand
    finally:
        writes.close()
        reads.close()


def test_verify_reports_a_hand_edit_and_rebuild_check_swaps_only_when_forced(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path)
    writes, reads = write_side(settings), read_side(settings, reports=False)
    load_demo(writes.bus, orders=8)
    LogFeed(EventLog(writes.app), reads.runner).catch_up()
    with reads.store.transaction() as tx:
        tx.execute("UPDATE inventory_levels SET on_hand = on_hand + 100 WHERE sku = 'KB-101'")
    writes.close()
    reads.close()
    live, truth = on_hand(settings, "KB-101")
    assert live == truth + 100

    clean = orderflow(tmp_path, "projections", "verify", "orders")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "equal" in clean.stdout

    every = orderflow(tmp_path, "projections", "verify", "--all")
    assert every.returncode == 1, every.stdout + every.stderr
    assert 'inventory_levels {"sku": "KB-101"}' in every.stdout
    live_line = next(line for line in every.stdout.splitlines() if "live:" in line)
    rebuilt_line = next(line for line in every.stdout.splitlines() if "rebuilt:" in line)
    assert json.loads(live_line.split("live:", 1)[1])["on_hand"] == truth + 100
    assert json.loads(rebuilt_line.split("rebuilt:", 1)[1])["on_hand"] == truth
    assert on_hand(settings, "KB-101") == (truth + 100, truth)  # verify swapped nothing

    refused = orderflow(tmp_path, "projections", "rebuild", "inventory", "--check")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "NOT swapped" in refused.stderr
    assert 'inventory_levels {"sku": "KB-101"}' in refused.stdout
    assert on_hand(settings, "KB-101") == (truth + 100, truth)

    forced = orderflow(tmp_path, "projections", "rebuild", "inventory", "--check", "--force")
    assert forced.returncode == 1, forced.stdout + forced.stderr  # it did differ
    assert "swapped in" in forced.stderr
    assert on_hand(settings, "KB-101") == (truth, truth)

    again = orderflow(tmp_path, "projections", "rebuild", "inventory", "--check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "swapped in" in again.stderr
