"""`scripts/stack up | status | down`: the production topology started by one command, used
end to end (write API -> PostgreSQL -> relay -> Kafka -> projectors -> read API), and
stopped cleanly."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import httpx2
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.kafka import REPO_ROOT

STACK = str(REPO_ROOT / "scripts" / "stack")


def stack(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    if "ORDERFLOW_KAFKA_LIB" in os.environ:  # where the jars are, if not in the repo
        env["ORDERFLOW_KAFKA_LIB"] = os.environ["ORDERFLOW_KAFKA_LIB"]
    return subprocess.run([STACK, *args], env=env, capture_output=True, text=True, timeout=300)


ALERTS = REPO_ROOT / "docs" / "ops" / "alerts.yml"


def _alerted_metrics() -> set[str]:
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert all({"alert", "expr", "for", "labels", "annotations"} <= set(r) for r in rules)
    return {name for rule in rules for name in re.findall(r"\borderflow_[a-z_]+", rule["expr"])}


def _exported_metrics(write: str, read: str, metrics_ports: Iterable[int]) -> set[str]:
    """Every family and sample name the stack's processes expose at /metrics."""
    urls = [f"{write}/metrics", f"{read}/metrics"]
    urls += [f"http://127.0.0.1:{port}/metrics" for port in metrics_ports]
    names: set[str] = set()
    for url in urls:
        text = httpx2.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            names.add(family.name)
            names.update(
                f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_count", "_sum")
            )
            names.update(sample.name for sample in family.samples)
    return names


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stack_up_serves_the_whole_path_and_down_stops_everything(tmp_path: Path) -> None:
    folder = tmp_path / "stack"
    started = stack("up", "--dir", str(folder))
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        printed = dict(
            re.findall(r"^(write API|read API|admin token \(12 h\)):\s+(\S+)", started.stdout, re.M)
        )
        write, read, token = (
            printed["write API"],
            printed["read API"],
            printed["admin token (12 h)"],
        )
        headers = {"Authorization": f"Bearer {token}"}
        assert stack("status", "--dir", str(folder)).returncode == 0

        item = {"sku": "STACK-1", "name": "stacked", "unit_price_cents": 250, "on_hand": 7}
        made = httpx2.post(f"{write}/inventory", json=item, headers=headers, timeout=10)
        assert made.status_code == 201, made.text
        placed = httpx2.post(
            f"{write}/orders",
            json={"customer_id": "c-1", "lines": [{"sku": "STACK-1", "quantity": 3}]},
            headers=headers,
            timeout=10,
        )
        assert placed.status_code == 201, placed.text
        position = placed.json()["position"]
        level = httpx2.get(
            f"{read}/inventory/STACK-1",
            params={"min_position": position, "wait_ms": 10_000},
            headers=headers,
            timeout=15,
        )
        assert level.status_code == 200, level.text
        # by hand: 7 received, 3 reserved by the order
        assert (level.json()["on_hand"], level.json()["reserved"]) == (7, 3)
        state = json.loads((folder / "stack.json").read_text())
        pids = [*state["pids"].values(), state["kafka_pid"]]
        assert len(state["pids"]) == 6
        exported = _exported_metrics(write, read, state["metrics"].values())
        for name in _alerted_metrics():
            assert name in exported, f"an alert rule names {name}, which no service exports"
    finally:
        stopped = stack("down", "--dir", str(folder))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(_alive(pid) for pid in pids)
    assert not (folder / "stack.json").exists()
    assert {p.name for p in (folder / "logs").iterdir()} >= {"write-api.log", "relay.log"}
    assert stack("status", "--dir", str(folder)).returncode == 1
