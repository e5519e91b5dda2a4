"""A reporting projector in a process of its own, for tests that kill it.

    python -m tests.reporting.projector_child DATA_DIR TARGET DATABASE [--stall-at N] [--report]

TARGET is `chdb:<dir>` or a ClickHouse HTTP URL. The projector feeds the reporting tables
from DATA_DIR's event store in batches of 40. `--stall-at N` makes it stop dead in its Nth
batch, after the rows and before the progress, print `STALLED <sales rows>` and wait to be
killed. `--report` prints the reports as JSON when it is done."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from infra.clickhouse.client import connect_chdb, connect_server
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings
from projections import reporting_queries as queries
from projections.feed import LogFeed
from projections.reporting_progress import PROGRESS
from projections.reporting_projector import ReportingProjector


class Stalling(ReportingProjector):
    def __init__(self, client: Client, stall_at: int) -> None:
        super().__init__(client)
        self.stall_at = stall_at
        self.batches = 0
        self.sales = 0

    def _insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        if table == PROGRESS.name:
            self.batches += 1
            if self.batches == self.stall_at:
                print(f"STALLED {self.sales}", flush=True)
                time.sleep(3600)
        elif rows and table == "sales_lines":
            self.sales = len(rows)
        super()._insert(table, rows, columns)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("target")
    parser.add_argument("database")
    parser.add_argument("--stall-at", type=int, default=0)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.target.startswith("chdb:"):
        client = connect_chdb(Path(args.target.removeprefix("chdb:")), args.database)
    else:
        client = connect_server(args.target, args.database)
    runner = Stalling(client, args.stall_at)
    runner.setup()
    events = open_event_store(Settings(data_dir=args.data_dir, jwt_secret="x" * 32))
    LogFeed(EventLog(events), runner, batch=40).catch_up()
    print(f"DONE {runner.position()}", flush=True)
    if args.report:
        reports = {
            "daily": queries.daily_sales(client, None, None),
            "skus": queries.top_skus(client, None, None, 1000),
        }
        print(json.dumps(reports, default=str), flush=True)


if __name__ == "__main__":
    main()
