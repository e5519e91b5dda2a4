"""A reporting projector killed (SIGKILL) in the middle of a batch, after its rows went in
and before its progress did, then started again: every event counts once."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from infra.bootstrap import WriteSide
from infra.eventstore.event_log import EventLog
from tests.reporting.conftest import ClickHouse
from tests.reporting.workload import Expected

ROOT = Path(__file__).resolve().parents[2]


def child(*args: str) -> list[str]:
    command = [sys.executable, "-m", "tests.reporting.projector_child", *args]
    return command


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}


def read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as waiting:
        waiting.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if waiting.select(timeout=0.5):
                return process.stdout.readline().strip()
            if process.poll() is not None:
                break
    process.kill()
    raise AssertionError(f"no line from the projector; stderr: {process.communicate()[1]}")


def test_a_projector_killed_mid_batch_and_restarted_counts_each_event_once(
    clickhouse: ClickHouse,
    shop: WriteSide,
    log: EventLog,
    expected: Expected,
    tmp_path: Path,
) -> None:
    # chDB: the children own a directory of their own (one process per directory); over
    # HTTP they talk to the server this process hosts, which outlives them
    target = clickhouse.url or f"chdb:{tmp_path / 'chdb'}"
    args = (str(shop.settings.data_dir), target, clickhouse.database)

    stalled = subprocess.Popen(
        child(*args, "--stall-at", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
        cwd=ROOT,
        text=True,
    )
    line = read_line(stalled, timeout_s=120)
    assert line.startswith("STALLED"), line
    assert int(line.split()[1]) > 0  # the batch it dies in holds sales
    stalled.kill()
    stalled.wait(timeout=30)

    restarted = subprocess.run(
        child(*args, "--report"),
        capture_output=True,
        env=environment(),
        cwd=ROOT,
        text=True,
        timeout=180,
        check=False,
    )
    assert restarted.returncode == 0, f"{restarted.stdout}\n{restarted.stderr}"
    done, report = restarted.stdout.splitlines()
    assert done == f"DONE {log.head()}"
    found = json.loads(report)
    assert found["daily"] == [
        {**item, "day": item["day"].isoformat()} for item in expected.daily_items()
    ]
    assert {r.pop("sku"): r for r in found["skus"]} == expected.skus
