"""The reports' HTTP contract (docs/api.md): answers, X-Projection-Position, min_position and
projection-lag, problems for bad input, roles. On chDB and over HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from commands.bus import Committed
from commands.ports import CommandContext
from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.clickhouse.client import connect_server
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.settings import Settings
from projections import dead_letters
from projections.feed import LogFeed
from projections.reporting_projector import ReportingProjector
from read_api.app import create_app
from schemas.auth import Role
from schemas.commands import (
    CancelOrder,
    Command,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    RecordRefund,
    RegisterItem,
    SettlePayment,
)
from tests.api.test_write_api import is_problem
from tests.commanding import placed as facts
from tests.harness.clickhouse_http import ClickHouseHTTP
from tests.reporting.conftest import ClickHouse

CONTEXT = CommandContext(correlation_id="reports-api", actor="test")
Headers = Callable[..., dict[str, str]]


class Shopfront:
    def __init__(self, side: WriteSide) -> None:
        self.side = side
        self.last_position = 0

    def send(self, command: Command) -> Committed:
        committed = self.side.bus.handle(command, CONTEXT)
        self.last_position = committed.position
        return committed

    def item(self, sku: str, price: int) -> None:
        self.send(RegisterItem(sku=sku, name=sku, unit_price_cents=price, on_hand=1000))

    def order(self, pay: bool = True, **lines: int) -> UUID:
        placed = facts(
            self.send(
                PlaceOrder(
                    customer_id="alice",
                    lines=tuple(OrderLineRequest(sku=s, quantity=q) for s, q in lines.items()),
                )
            )
        )
        order_id = placed.order_id
        if pay:
            self.send(PayOrder(order_id=order_id, amount_cents=placed.total_cents, payment_ref="p"))
        return order_id


@pytest.fixture
def settings(sqlite_settings: Settings) -> Settings:
    return sqlite_settings


@pytest.fixture
def shopfront(settings: Settings) -> Iterator[Shopfront]:
    side = write_side(settings)
    yield Shopfront(side)
    side.close()


def reading(settings: Settings, runner: ReportingProjector) -> ReadSide:
    reads = read_side(settings, reports=False)
    reads.reporting = runner
    return reads


@pytest.fixture
def runner(clickhouse: ClickHouse) -> ReportingProjector:
    return clickhouse.runner()


@pytest.fixture
def api(settings: Settings, runner: ReportingProjector) -> Iterator[TestClient]:
    reads = reading(settings, ReportingProjector(runner.client))
    with TestClient(create_app(reads)) as client:
        yield client
    reads.store.close()
    reads.events.close()


@pytest.fixture
def reports_feed(shopfront: Shopfront, runner: ReportingProjector) -> LogFeed:
    return LogFeed(EventLog(shopfront.side.app), runner)


@pytest.fixture
def headers(settings: Settings) -> Headers:
    def make(role: Role = Role.OPERATOR) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(settings.token_secret, 'r', role, 600)}"}

    return make


def test_reports_answer_what_was_paid_with_the_position(
    shopfront: Shopfront, reports_feed: LogFeed, api: TestClient, headers: Headers
) -> None:
    shopfront.item("KB", 1000)
    shopfront.item("MS", 250)
    shopfront.order(KB=2, MS=4)
    shopfront.order(MS=1)
    shopfront.order(pay=False, KB=7)  # reserved, not paid: in no sales report
    cancelled = shopfront.order(KB=1)
    shopfront.send(CancelOrder(order_id=cancelled, reason="test"))  # paid, then cancelled
    reports_feed.catch_up()
    today = datetime.now(UTC).date().isoformat()

    daily = api.get("/reports/daily-sales", headers=headers())
    assert daily.status_code == 200, daily.text
    assert daily.headers["x-projection-position"] == str(shopfront.last_position)
    assert daily.json() == {
        "items": [{"day": today, "orders": 3, "units": 8, "revenue_cents": 4250}]
    }

    top = api.get("/reports/top-skus", params={"from": today, "to": today}, headers=headers())
    assert top.json() == {
        "items": [
            {"sku": "KB", "units": 3, "revenue_cents": 3000},
            {"sku": "MS", "units": 5, "revenue_cents": 1250},
        ]
    }
    by_units = api.get("/reports/top-skus", params={"by": "units", "limit": 1}, headers=headers())
    assert by_units.json() == {"items": [{"sku": "MS", "units": 5, "revenue_cents": 1250}]}

    funnel = api.get("/reports/order-funnel", headers=headers(Role.AUDITOR)).json()
    assert funnel["orders"] == 4
    assert funnel["cancellation_rate"] == 0.25
    stages = {i["status"]: (i["reached"], i["orders"]) for i in funnel["items"]}
    assert stages["paid"] == (3, 2)
    assert stages["reserved"] == (4, 1)
    assert stages["cancelled"] == (1, 1)


def test_the_funnel_shows_orders_owing_a_refund_until_it_is_paid_back(
    shopfront: Shopfront, reports_feed: LogFeed, api: TestClient, headers: Headers
) -> None:
    shopfront.item("KB", 1000)
    refunded, owing, late, wrong, _fine = (
        shopfront.order(pay=p, KB=1) for p in (True, True, False, False, True)
    )
    for paid in (refunded, owing, late):
        shopfront.send(CancelOrder(order_id=paid, reason="test"))
    shopfront.send(RecordRefund(order_id=refunded, amount_cents=1000, refund_ref="re_1"))
    for n, (order_id, amount) in enumerate([(late, 1000), (wrong, 999)]):
        shopfront.send(
            SettlePayment(
                order_id=order_id,
                amount_cents=amount,
                currency="EUR",
                payment_ref=f"pi_{n}",
                provider_event_id=f"evt_{n}",
            )
        )
    shopfront.send(
        RecordRefund(order_id=late, amount_cents=1000, refund_ref="re_late", payment_ref="pi_0")
    )
    reports_feed.catch_up()

    funnel = api.get("/reports/order-funnel", headers=headers()).json()
    stages = {i["status"]: (i["reached"], i["orders"]) for i in funnel["items"]}
    # by hand: refunded and late owed and were paid back; owing and wrong still owe
    assert stages["refund_due"] == (4, 2)
    assert funnel["items"][-1]["status"] == "refund_due"
    # an unapplied payment leaves the order's status as it was
    assert stages["cancelled"] == (3, 3)
    assert stages["reserved"] == (5, 1)
    assert stages["paid"] == (3, 1)


def test_a_range_outside_the_sales_is_empty(
    shopfront: Shopfront, reports_feed: LogFeed, api: TestClient, headers: Headers
) -> None:
    shopfront.item("KB", 1000)
    shopfront.order(KB=1)
    reports_feed.catch_up()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    for path in ("/reports/daily-sales", "/reports/top-skus"):
        answer = api.get(path, params={"from": tomorrow}, headers=headers())
        assert answer.json() == {"items": []}
    assert (
        api.get("/reports/order-funnel", params={"from": tomorrow}, headers=headers()).json()[
            "orders"
        ]
        == 0
    )


def test_min_position_waits_for_the_reports_to_reflect_a_payment(
    shopfront: Shopfront, reports_feed: LogFeed, api: TestClient, headers: Headers
) -> None:
    shopfront.item("KB", 1000)
    reports_feed.start()
    try:
        for n in range(1, 4):
            shopfront.order(KB=1)
            fresh = api.get(
                "/reports/daily-sales",
                params={"min_position": shopfront.last_position, "wait_ms": 5000},
                headers=headers(),
            )
            assert fresh.status_code == 200, fresh.text
            assert int(fresh.headers["x-projection-position"]) >= shopfront.last_position
            assert fresh.json()["items"][0]["orders"] == n
    finally:
        reports_feed.stop()


def test_a_position_not_reached_in_time_is_503_projection_lag(
    shopfront: Shopfront, api: TestClient, headers: Headers
) -> None:
    shopfront.item("KB", 1000)
    shopfront.order(KB=1)  # not fed to the reports
    response = api.get(
        "/reports/top-skus",
        params={"min_position": shopfront.last_position, "wait_ms": 50},
        headers=headers(),
    )
    is_problem(response, 503, "projection-lag")
    assert response.headers["retry-after"] == "1"
    assert response.headers["x-projection-position"] == "0"


@pytest.fixture
def chdb_api(settings: Settings, chdb_database: ClickHouse) -> Iterator[TestClient]:
    reads = reading(settings, chdb_database.runner())
    with TestClient(create_app(reads)) as client:
        yield client
    reads.store.close()
    reads.events.close()


@pytest.mark.parametrize(
    ("path", "query", "bad"),
    [
        ("/reports/daily-sales", {"from": "yesterday"}, "from"),
        ("/reports/daily-sales", {"from": "1772668800"}, "from"),  # seconds are not a day
        ("/reports/daily-sales", {"to": "2026-02-30"}, "to"),
        ("/reports/top-skus", {"limit": 0}, "limit"),
        ("/reports/top-skus", {"limit": 1001}, "limit"),
        ("/reports/top-skus", {"by": "margin"}, "by"),
        ("/reports/daily-sales", {"wait_ms": 20_000}, "wait_ms"),
        ("/reports/daily-sales", {"min_position": 0}, "min_position"),
    ],
)
def test_bad_queries_are_422_problems_naming_the_parameter(
    chdb_api: TestClient, headers: Headers, path: str, query: dict[str, Any], bad: str
) -> None:
    body = is_problem(chdb_api.get(path, params=query, headers=headers()), 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["query", bad]]


@pytest.mark.parametrize("path", ["/reports/daily-sales", "/reports/top-skus"])
def test_a_range_that_ends_before_it_starts_is_empty(
    chdb_api: TestClient, headers: Headers, path: str
) -> None:
    query = {"from": "2026-03-05", "to": "2026-03-01"}
    answer = chdb_api.get(path, params=query, headers=headers())
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == []


def test_reports_need_a_token_and_a_staff_role(chdb_api: TestClient, headers: Headers) -> None:
    is_problem(chdb_api.get("/reports/daily-sales"), 401, "unauthenticated")
    is_problem(chdb_api.get("/reports/top-skus", headers=headers(Role.CUSTOMER)), 403, "forbidden")
    assert chdb_api.get("/reports/top-skus", headers=headers(Role.ADMIN)).status_code == 200


def test_without_a_reporting_store_there_are_no_reports(
    settings: Settings, headers: Headers
) -> None:
    reads = read_side(settings, reports=False)
    with TestClient(create_app(reads)) as client:
        is_problem(client.get("/reports/daily-sales", headers=headers()), 404, "http-error")
    reads.close()


def test_clickhouse_going_away_is_503_unavailable(
    settings: Settings, chdb_engine: object, chdb_dir: object, headers: Headers
) -> None:
    server = ClickHouseHTTP(str(chdb_dir))
    runner = ReportingProjector(connect_server(server.start(), "gone_soon"))
    runner.setup()
    reads = reading(settings, runner)
    with TestClient(create_app(reads)) as client:
        assert client.get("/reports/daily-sales", headers=headers()).status_code == 200
        ready = client.get("/ready").json()
        assert ready["checks"]["clickhouse"] == "ok"
        runner.client.command("DROP DATABASE gone_soon SYNC")
        server.stop()
        response = client.get("/reports/daily-sales", headers=headers())
        is_problem(response, 503, "unavailable")
        assert response.headers["retry-after"] == "1"
        not_ready = is_problem(client.get("/ready"), 503, "not-ready")
        assert "clickhouse: down" in not_ready["detail"]
    reads.close()


def gauge(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    [line] = [x for x in text.splitlines() if x.startswith(f"{name}{{{wanted}}} ")]
    return float(line.rsplit(" ", 1)[1])


def test_the_scrape_covers_the_reports_and_a_clickhouse_down_hides_no_other_gauge(
    settings: Settings, shopfront: Shopfront, chdb_engine: object, chdb_dir: object
) -> None:
    server = ClickHouseHTTP(str(chdb_dir))
    runner = ReportingProjector(connect_server(server.start(), "scraped"))
    runner.setup()
    reads = reading(settings, runner)
    log = EventLog(shopfront.side.app)
    shopfront.item("KB", 1000)
    shopfront.order(KB=1)
    LogFeed(log, runner).catch_up()
    LogFeed(log, reads.runner).catch_up()
    head = log.head()  # read from the event store, not from a read model
    with TestClient(create_app(reads)) as client:
        scraped = client.get("/metrics").text
        assert gauge(scraped, "orderflow_projection_position", projection="reporting") == head
        assert gauge(scraped, "orderflow_projection_lag_positions", projection="reporting") == 0
        for status in ("failed", "held"):
            assert (
                gauge(scraped, "orderflow_dead_letters", projection="reporting", status=status) == 0
            )

        runner.client.command("DROP DATABASE scraped SYNC")
        server.stop()
        shopfront.order(KB=2)
        LogFeed(log, reads.runner).catch_up()
        with reads.store.transaction() as tx:  # one letter parked in the read store meanwhile
            dead_letters.park(tx, "orders", log.read(0, 1)[0], "failed", "planted")
        after = client.get("/metrics")
        assert after.status_code == 200
        moved = log.head()
        assert moved > head
        assert gauge(after.text, "orderflow_projection_position", projection="orders") == moved
        letters = gauge(after.text, "orderflow_dead_letters", projection="orders", status="failed")
        assert letters == 1
    reads.close()
