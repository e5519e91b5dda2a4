"""`orderflow dev --demo` on a fresh data dir answers within seconds, with the demo loaded,
and starts again on the same data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from tests.harness.ports import free_port

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
STARTUP_BUDGET_S = 20


@contextmanager
def dev_server(data_dir: Path) -> Iterator[tuple[str, str, float]]:
    """Runs `orderflow dev --demo`; yields the write and read API addresses and the
    seconds it took until both answered."""
    write_port, read_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    started = time.monotonic()
    process = subprocess.Popen(
        [
            ORDERFLOW,
            "dev",
            "--demo",
            "--data-dir",
            str(data_dir),
            "--write-port",
            str(write_port),
            "--read-port",
            str(read_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    urls = (f"http://127.0.0.1:{write_port}", f"http://127.0.0.1:{read_port}")
    try:
        for url in urls:
            while True:
                try:
                    if httpx2.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() - started > STARTUP_BUDGET_S:
                    process.kill()
                    output = process.communicate()[0]
                    pytest.fail(f"orderflow dev did not answer in {STARTUP_BUDGET_S}s:\n{output}")
                time.sleep(0.1)
        yield urls[0], urls[1], time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=15)


def token(data_dir: Path, role: str) -> dict[str, str]:
    minted = subprocess.run(
        [ORDERFLOW, "auth", "token", "--sub", "ops", "--role", role],
        env={**os.environ, "ORDERFLOW_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {"Authorization": f"Bearer {minted}"}


def test_dev_with_demo_answers_within_seconds_with_both_apis(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with dev_server(data) as (write, read, elapsed):
        assert elapsed < STARTUP_BUDGET_S
        assert httpx2.get(f"{write}/ready").json()["checks"] == {"event_store": "ok"}
        received = httpx2.post(
            f"{write}/inventory/KB-101/receipts",
            json={"quantity": 1},
            headers=token(data, "operator"),
        )
        assert received.status_code == 200, received.text
        assert received.json()["position"] > 24  # the demo orders came first
        level = httpx2.get(
            f"{read}/inventory/KB-101",
            params={"min_position": received.json()["position"]},
            headers=token(data, "operator"),
        )
        assert level.status_code == 200, level.text
        assert level.json()["on_hand"] == received.json()["on_hand"]
        paid = httpx2.get(f"{read}/orders", params={"status": "paid"}, headers=token(data, "admin"))
        assert paid.json()["items"]


def test_dev_starts_again_on_its_data_and_loads_what_it_did_not_create(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with dev_server(data) as (write, _, _):
        first = httpx2.post(
            f"{write}/inventory/KB-101/receipts",
            json={"quantity": 1},
            headers=token(data, "operator"),
        ).json()
    with dev_server(data) as (write, _, _):  # a new process: no event class created yet
        again = httpx2.post(
            f"{write}/inventory/KB-101/adjustments",
            json={"delta": -1, "reason": "count"},
            headers=token(data, "operator"),
        )
        assert again.status_code == 200, again.text
        assert again.json()["on_hand"] == first["on_hand"] - 1
