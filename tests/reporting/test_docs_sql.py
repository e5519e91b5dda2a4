"""Every SQL example in docs/reporting.md runs on the tables as they are (chDB)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import connect_chdb
from infra.eventstore.event_log import EventLog
from projections.reporting_projector import ReportingProjector

DOC = Path(__file__).resolve().parents[2] / "docs" / "reporting.md"
BLOCKS = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
# Grafana's macros and user management are for a server, not for chDB
QUERIES = [b for b in BLOCKS if "$__" not in b and not b.lstrip().startswith("CREATE USER")]


@pytest.fixture(scope="module")
def loaded(chdb_engine: Client, chdb_dir: Path, log: EventLog) -> Iterator[Client]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    runner = ReportingProjector(connect_chdb(chdb_dir, database))
    runner.setup()
    for batch in log.iterate(0, batch=2000):
        runner.apply(batch)
    yield runner.client
    chdb_engine.command(f"DROP DATABASE {database} SYNC")
    runner.close()


def test_the_doc_has_its_examples() -> None:
    assert len(QUERIES) >= 7


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
def test_a_documented_query_runs(loaded: Client, sql: str) -> None:
    statement = sql.strip().rstrip(";")
    shape = loaded.query(f"SELECT * FROM ({statement}) LIMIT 0")  # the columns, even if empty
    assert shape.column_names
    result = loaded.query(statement)
    if "today()" not in sql:  # the workload is in March 2026, not in the last days
        assert result.result_rows
        assert len(result.result_rows[0]) == len(shape.column_names)
