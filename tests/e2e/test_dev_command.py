"""`orderflow dev --demo` on a fresh data dir answers within seconds, with the demo loaded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.harness.ports import free_port

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
STARTUP_BUDGET_S = 20


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[tuple[str, Path, float]]:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            ORDERFLOW,
            "dev",
            "--demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--write-port",
            str(port),
            "--read-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx2.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if process.poll() is not None or time.monotonic() - started > STARTUP_BUDGET_S:
                process.kill()
                output = process.communicate()[0]
                pytest.fail(f"orderflow dev did not answer in {STARTUP_BUDGET_S}s:\n{output}")
            time.sleep(0.1)
        yield base, tmp_path / "data", time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_dev_with_demo_answers_within_seconds(dev_server: tuple[str, Path, float]) -> None:
    base, data_dir, elapsed = dev_server
    assert elapsed < STARTUP_BUDGET_S
    assert httpx2.get(f"{base}/ready").json()["checks"] == {"event_store": "ok"}

    minted = subprocess.run(
        [ORDERFLOW, "auth", "token", "--sub", "ops", "--role", "operator"],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    received = httpx2.post(
        f"{base}/inventory/KB-101/receipts",
        json={"quantity": 1},
        headers={"Authorization": f"Bearer {minted}"},
    )
    assert received.status_code == 200, received.text
    assert received.json()["on_hand"] > 1  # the demo catalogue is there
    assert received.json()["position"] > 24  # and the demo orders before it
