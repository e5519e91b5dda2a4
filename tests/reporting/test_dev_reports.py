"""`orderflow dev --demo` serves non-empty reports (chDB, in its own process) within
seconds of its start, in agreement with the orders read model, and reads its own writes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2

from tests.e2e.test_dev_command import STARTUP_BUDGET_S, dev_server, token


def test_dev_demo_serves_reports_within_seconds_and_reads_its_own_writes(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    admin = token(data, "admin")  # before the start: it creates the data dir's secret
    with dev_server(data) as (write, read, elapsed):
        up = time.monotonic()
        received = httpx2.post(
            f"{write}/inventory/KB-101/receipts", json={"quantity": 1}, headers=admin
        ).json()  # after the demo: reports that reflect it reflect the demo
        daily = httpx2.get(
            f"{read}/reports/daily-sales",
            params={"min_position": received["position"], "wait_ms": 10_000},
            headers=admin,
        )
        assert daily.status_code == 200, daily.text
        assert elapsed + (time.monotonic() - up) < STARTUP_BUDGET_S  # process start to report
        sold = daily.json()["items"]
        assert sold  # the demo's paid orders, today

        orders = httpx2.get(f"{read}/orders", params={"limit": 500}, headers=admin).json()
        paid = [o for o in orders["items"] if o["status"] in ("paid", "shipped", "delivered")]
        assert sum(d["orders"] for d in sold) == len(paid)
        assert sum(d["revenue_cents"] for d in sold) == sum(o["total_cents"] for o in paid)
        top = httpx2.get(f"{read}/reports/top-skus", headers=admin).json()["items"]
        assert top
        assert sum(s["revenue_cents"] for s in top) <= sum(o["total_cents"] for o in paid)

        placed = httpx2.post(
            f"{write}/orders",
            json={"customer_id": "reporter", "lines": [{"sku": "KB-101", "quantity": 1}]},
            headers=admin,
        ).json()
        paid_now = httpx2.post(
            f"{write}/orders/{placed['order_id']}/payments",
            json={"amount_cents": placed["total_cents"], "payment_ref": "dev-test"},
            headers=admin,
        ).json()
        fresh = httpx2.get(
            f"{read}/reports/daily-sales",
            params={"min_position": paid_now["position"]},
            headers=admin,
        )
        assert fresh.status_code == 200, fresh.text
        assert int(fresh.headers["x-projection-position"]) >= paid_now["position"]
        now = fresh.json()["items"]
        assert sum(d["orders"] for d in now) == sum(d["orders"] for d in sold) + 1
