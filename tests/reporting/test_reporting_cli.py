"""`orderflow projections list | status | rebuild reporting`: embedded (chDB under the data
dir, in the command's own process) and against a ClickHouse server over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from commands.demo import load_demo
from infra.bootstrap import WriteSide, write_side
from infra.clickhouse.client import connect_server
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.reporting_projector import ReportingProjector
from tests.reporting.workload import Expected, assert_reports_match

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))


def orderflow(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    clean.update(ORDERFLOW_DATA_DIR=str(data_dir), COLUMNS="200", **env)
    return subprocess.run(
        [ORDERFLOW, *args], env=clean, capture_output=True, text=True, timeout=120, check=False
    )


def row(output: str, name: str) -> list[str]:
    line = next(line for line in output.splitlines() if f" {name} " in line)
    return [cell.strip() for cell in line.split("│") if cell.strip()]


@pytest.fixture
def demo_shop(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    side = write_side(Settings(data_dir=tmp_path, database_url=None))
    load_demo(side.bus, orders=12)
    yield tmp_path, EventLog(side.app).head()
    side.close()


def test_embedded_status_and_rebuild_of_the_reports(demo_shop: tuple[Path, int]) -> None:
    data, head = demo_shop
    listed = orderflow(data, "projections", "list")
    assert listed.returncode == 0, listed.stderr
    assert row(listed.stdout, "reporting")[1].startswith("order_events, sales_lines")

    before = orderflow(data, "projections", "status")
    assert before.returncode == 0, before.stderr
    assert row(before.stdout, "reporting")[:4] == ["reporting", "0", str(head), str(head)]

    rebuilt = orderflow(data, "projections", "rebuild", "reporting")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"reporting: rebuilt to position {head} ({head} events) and swapped in" in (
        rebuilt.stderr
    )
    assert f"{head}/{head} positions" in rebuilt.stderr  # the progress bar, at its end

    after = orderflow(data, "projections", "status")
    assert row(after.stdout, "reporting")[:4] == ["reporting", str(head), str(head), "0"]


def test_rebuild_against_a_server_swaps_in_reports_equal_to_the_event_store(
    clickhouse_http: str, shop: WriteSide, log: EventLog, expected: Expected
) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    client: Client = connect_server(clickhouse_http, database)
    try:
        live = ReportingProjector(client)
        live.setup()
        live.apply(next(log.iterate(0, batch=50)))  # a live projection, part way
        rebuilt = orderflow(
            shop.settings.data_dir,
            "projections",
            "rebuild",
            "reporting",
            ORDERFLOW_CLICKHOUSE_URL=f"{clickhouse_http}/{database}",
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert f"reporting: rebuilt to position {log.head()}" in rebuilt.stderr
        assert live.position() == log.head()
        assert_reports_match(live, expected)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()


def test_the_reports_dead_letters_are_listed_and_retried(
    clickhouse_http: str, tmp_path: Path
) -> None:
    """An order event whose creation the reports never saw is parked; the CLI lists it
    beside the SQL projections' letters, and `retry --all` applies it once it can be."""
    from tests.reporting.test_reporting_projection import CREATED, envelope

    database = f"t_{uuid.uuid4().hex[:12]}"
    client: Client = connect_server(clickhouse_http, database)
    env = {"ORDERFLOW_CLICKHOUSE_URL": f"{clickhouse_http}/{database}"}
    order = uuid.uuid4()
    try:
        runner = ReportingProjector(client)
        runner.setup()
        paid = envelope("order.paid", 2, {"amount_cents": 2450, "payment_ref": "p"}, 7, 6, order)
        assert runner.apply([paid]) == 1
        listed = orderflow(tmp_path, "dead-letters", "list", "--json", **env)
        assert listed.returncode == 0, listed.stderr
        [letter] = [r for r in json.loads(listed.stdout) if r["projection"] == "reporting"]
        assert (letter["position"], letter["status"]) == (7, "failed")
        assert letter["error"].startswith("MissingOrder")

        still = orderflow(tmp_path, "dead-letters", "retry", "--all", **env)
        assert still.returncode == 1  # the creation is still missing
        assert "released 0, still parked 1" in still.stderr

        # the creation arrives late: the order is stopped, so it waits behind the letter
        runner.apply([envelope("order.created", 1, CREATED, 3, 2, order)])
        assert {(x.position, x.status) for x in runner.letters()} == {(3, "held"), (7, "failed")}
        retried = orderflow(tmp_path, "dead-letters", "retry", "--all", **env)
        assert retried.returncode == 0, retried.stderr
        assert "released 2, still parked 0" in retried.stderr  # in position order: 3, then 7
        assert runner.letters() == []
        facts = client.query(f"SELECT type FROM order_events FINAL WHERE order_id = '{order}'")
        assert sorted(r[0] for r in facts.result_rows) == ["order.created", "order.paid"]
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()
