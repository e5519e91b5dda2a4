"""`orderflow audit state` and `audit verify` on an embedded data directory: one JSON object
with the read API's fields, the values of the order loaded through the domain class, a past
version on request, and a checkpoint that cannot be read refused with exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from domain.order import Order, ShippingAddress, priced_line
from infra.cli import app as cli
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings

ADDRESS = ShippingAddress(
    recipient="Grace Hopper",
    line1="1 Navy Yard",
    line2="Building 5",
    postal_code="20374",
    city="Washington",
    country="US",
)
# the read API's OrderState and VerifyReport, spelled out here as the contract
STATE_FIELDS = [
    "order_id",
    "customer_id",
    "status",
    "currency",
    "total_cents",
    "lines",
    "payment_ref",
    "refund_due",
    "version",
    "shipping_address",
    "redacted",
]
REPORT_FIELDS = ["ok", "checked", "first_bad_position", "reason", "last_position", "checkpoint"]


def orderflow(data_dir: Path, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(data_dir))
    return CliRunner().invoke(cli, list(args), env=env)


def answer(result: Result) -> dict[str, Any]:
    assert result.stdout.count("\n") == 1, result.stdout  # one JSON object on one line
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_audit_state_shows_the_order_now_and_at_a_past_version(tmp_path: Path) -> None:
    store = open_event_store(Settings(data_dir=tmp_path))
    order = Order.place(
        "grace", [priced_line("A-1", 2, 150), priced_line("B-2", 1, 99)], "EUR", ADDRESS
    )
    order.mark_reserved()
    order.pay(399, "pay-1")
    store.save(order)
    loaded: object = store.repository.get(order.id)  # the oracle: the domain class's fold
    assert isinstance(loaded, Order)

    now = orderflow(tmp_path, "audit", "state", str(order.id))
    assert now.exit_code == 0, now.output
    shown = answer(now)
    assert list(shown) == STATE_FIELDS
    assert shown == {
        "order_id": str(order.id),
        "customer_id": "grace",
        "status": loaded.status,
        "currency": "EUR",
        "total_cents": 2 * 150 + 99,
        "lines": [
            {"sku": "A-1", "quantity": 2, "unit_price_cents": 150},
            {"sku": "B-2", "quantity": 1, "unit_price_cents": 99},
        ],
        "payment_ref": "pay-1",
        "refund_due": False,
        "version": loaded.version,
        "shipping_address": dict(ADDRESS),
        "redacted": [],
    }

    placed = answer(orderflow(tmp_path, "audit", "state", str(order.id), "--version", "1"))
    first: object = store.repository.get(order.id, version=1)
    assert isinstance(first, Order)
    assert (placed["version"], placed["status"], placed["payment_ref"]) == (
        1,
        first.status,
        None,
    )
    assert placed["status"] != shown["status"]

    both = orderflow(
        tmp_path,
        "audit",
        "state",
        str(order.id),
        "--version",
        "1",
        "--as-of",
        "2020-01-01T00:00:00Z",
    )
    assert both.exit_code == 2
    assert both.stdout == ""


def test_audit_verify_reports_the_walk_and_refuses_an_unreadable_checkpoint(
    tmp_path: Path,
) -> None:
    store = open_event_store(Settings(data_dir=tmp_path))
    order = Order.place("grace", [priced_line("A-1", 1, 150)], "EUR", None)
    order.mark_reserved()
    store.save(order)  # two events: positions 1 and 2

    walked = orderflow(tmp_path, "audit", "verify")
    assert walked.exit_code == 0, walked.output
    assert answer(walked) == {
        "ok": True,
        "checked": 2,
        "first_bad_position": None,
        "reason": None,
        "last_position": 2,
        "checkpoint": None,
    }
    resumed = answer(orderflow(tmp_path, "audit", "verify", "--after", "1"))
    assert (resumed["checked"], resumed["last_position"]) == (1, 2)

    (tmp_path / "not-a-checkpoint.json").write_text("{}")
    refused = orderflow(
        tmp_path, "audit", "verify", "--checkpoint", str(tmp_path / "not-a-checkpoint.json")
    )
    assert refused.exit_code == 1
    report = answer(refused)
    assert list(report) == REPORT_FIELDS
    assert (report["ok"], report["checked"], report["checkpoint"]) == (
        False,
        0,
        str(tmp_path / "not-a-checkpoint.json"),
    )
    assert "not a checkpoint" in report["reason"]
