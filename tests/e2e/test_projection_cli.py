"""`orderflow projections list | status | rebuild` on an embedded data directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from commands.demo import load_demo
from commands.ports import CommandContext
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.feed import LogFeed
from projections.registry import REGISTRY, SQL_BY_NAME
from schemas.commands import ReceiveStock
from tests.conftest import TEST_SECRET
from tests.folding import fold_and_compare
from tests.oracle import assert_read_models_match_aggregates

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))


def orderflow(data_dir: Path, *args: str, **more: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(data_dir), COLUMNS="200", **more)
    return subprocess.run([ORDERFLOW, *args], env=env, capture_output=True, text=True, timeout=60)


def test_status_shows_lag_and_rebuild_swaps_in_an_equal_projection(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writes, reads = write_side(settings), read_side(settings)
    load_demo(writes.bus, orders=10)
    LogFeed(EventLog(writes.app), reads.runner).catch_up()
    for _ in range(3):  # appended, not yet projected
        writes.bus.handle(ReceiveStock(sku="KB-101", quantity=1), CommandContext("cli", "t"))
    head = EventLog(writes.app).head()

    listed = orderflow(tmp_path, "projections", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(name in listed.stdout for name in ("orders", "inventory", "customer_orders"))

    status = orderflow(tmp_path, "projections", "status")
    assert status.returncode == 0, status.stderr
    inventory_row = next(line for line in status.stdout.splitlines() if " inventory " in line)
    cells = [c.strip() for c in inventory_row.split("│") if c.strip()]
    assert cells[:4] == ["inventory", str(head - 3), str(head), "3"]
    assert float(cells[4]) >= 0

    rebuilt = orderflow(tmp_path, "projections", "rebuild", "--all")
    assert rebuilt.returncode == 0, rebuilt.stderr
    # every projection, the reporting one (chDB) included
    assert rebuilt.stderr.count(f"rebuilt to position {head}") == len(REGISTRY.names)

    assert reads.runner.positions() == dict.fromkeys(SQL_BY_NAME, head)
    fold_and_compare(reads.store, EventLog(writes.app))
    assert_read_models_match_aggregates(reads.store, writes.app)
    writes.close()
    reads.close()


def test_rebuild_refuses_an_unknown_projection(tmp_path: Path) -> None:
    refused = orderflow(tmp_path, "projections", "rebuild", "nope")
    assert refused.returncode == 2
    assert "unknown projection" in refused.stderr


@pytest.mark.postgres
def test_without_clickhouse_rebuild_all_skips_the_reports_and_naming_them_fails(
    tmp_path: Path, postgres_url: str
) -> None:
    """Production without ORDERFLOW_CLICKHOUSE_URL: the reports' store is not configured,
    so `--all` rebuilds the read store's read models and says so of the reports; naming
    the reports is an error, not a rebuild of a chDB no projector feeds."""
    production = {
        "ORDERFLOW_DATABASE_URL": postgres_url,
        "ORDERFLOW_JWT_SECRET": TEST_SECRET,
        "ORDERFLOW_PAYMENT_WEBHOOK_SECRET": "test-webhook-secret-0123",
    }
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, jwt_secret=TEST_SECRET)
    writes = write_side(settings)
    load_demo(writes.bus, orders=4)
    head = EventLog(writes.app).head()
    writes.close()

    every = orderflow(tmp_path, "projections", "rebuild", "--all", **production)
    assert every.returncode == 0, every.stderr
    for name in SQL_BY_NAME:  # by hand: the read store's five, each to the head
        assert f"{name}: rebuilt to position {head} ({head} events)" in every.stderr
    assert "reporting: not configured" in every.stderr
    assert "reporting: rebuilt" not in every.stderr
    assert not (tmp_path / "chdb").exists()

    named = orderflow(tmp_path, "projections", "rebuild", "reporting", **production)
    assert named.returncode == 1
    assert "ORDERFLOW_CLICKHOUSE_URL" in named.stderr
