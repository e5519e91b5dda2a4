"""The projection itself (an event in, rows out) and the runner's watermark across holes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

from projections import reporting_dead_letters
from projections.reporting import OrderFacts, ReportRows, reporting
from projections.reporting_projector import ReportingProjector
from projections.reporting_tables import ORDER_EVENTS, SALES_LINES
from schemas.envelope import Envelope
from tests.reporting.conftest import ClickHouse

ORDER = uuid4()
LATE_EVENING = datetime(2026, 3, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
CREATED = {
    "customer_id": "alice",
    "currency": "EUR",
    "total_cents": 2450,
    "lines": [
        {"sku": "KB", "quantity": 2, "unit_price_cents": 1000},
        {"sku": "MS", "quantity": 1, "unit_price_cents": 450},
    ],
}


def envelope(
    kind: str,
    version: int,
    data: dict[str, Any],
    position: int | None = None,
    previous: int | None = None,
    aggregate: UUID = ORDER,
) -> Envelope:
    position = position or version
    return Envelope(
        event_id=uuid4(),
        type=kind,
        aggregate_type="order" if kind.startswith("order") else "inventory",
        aggregate_id=aggregate,
        version=version,
        position=position,
        previous_position=position - 1 if previous is None else previous,
        occurred_at=LATE_EVENING,
        schema_version=1,
        data=data,
    )


def project(*envelopes: Envelope) -> ReportRows:
    rows = ReportRows()
    order = OrderFacts.created_by(envelopes[0])
    for e in envelopes:
        reporting.project(e, order, rows)
    return rows


def as_dict(row: list[Any], columns: list[str]) -> dict[str, Any]:
    return dict(zip(columns, row, strict=True))


def test_every_order_event_is_a_fact_row_carrying_the_order() -> None:
    rows = project(
        envelope("order.created", 1, CREATED),
        envelope("order.reserved", 2, {}),
        envelope("order.payment_failed", 3, {"reason": "declined", "payment_ref": "p0"}),
    )
    facts = [as_dict(r, ORDER_EVENTS.insert_columns) for r in rows.order_events]
    assert [(f["type"], f["status"], f["version"]) for f in facts] == [
        ("order.created", "created", 1),
        ("order.reserved", "reserved", 2),
        ("order.payment_failed", "reserved", 3),  # a failed payment leaves it reserved
    ]
    assert {f["customer_id"] for f in facts} == {"alice"}
    assert facts[2]["lines.sku"] == ["KB", "MS"]
    assert facts[2]["reason"] == "declined"
    assert rows.sales_lines == []


def test_a_payment_sells_each_line_on_the_utc_day_it_was_paid() -> None:
    rows = project(
        envelope("order.created", 1, CREATED),
        envelope("order.paid", 2, {"amount_cents": 2450, "payment_ref": "p1"}),
    )
    paid = as_dict(rows.order_events[1], ORDER_EVENTS.insert_columns)
    assert (paid["paid_cents"], paid["payment_ref"], paid["day"].isoformat()) == (
        2450,
        "p1",
        "2026-03-03",  # 23:30 at UTC-5 is the next day in UTC
    )
    sales = [as_dict(r, SALES_LINES.insert_columns) for r in rows.sales_lines]
    assert [(s["sku"], s["quantity"], s["revenue_cents"]) for s in sales] == [
        ("KB", 2, 2000),
        ("MS", 1, 450),
    ]
    assert {s["day"].isoformat() for s in sales} == {"2026-03-03"}


def test_a_cancelled_paid_order_owes_then_records_its_refund() -> None:
    rows = project(
        envelope("order.created", 1, CREATED),
        envelope("order.cancelled", 2, {"reason": "no", "refund_due": True}),
        envelope("order.refunded", 3, {"amount_cents": 2450, "refund_ref": "r1"}),
    )
    facts = [as_dict(r, ORDER_EVENTS.insert_columns) for r in rows.order_events]
    assert [(f["refund_due_cents"], f["refunded_cents"], f["status"]) for f in facts[1:]] == [
        (2450, 0, "cancelled"),
        (0, 2450, "cancelled"),
    ]


def test_inventory_events_make_no_rows() -> None:
    item = envelope("inventory.stock_received", 2, {"quantity": 5}, aggregate=uuid4())
    rows = ReportRows()
    assert not reporting.needs_order(item)
    reporting.project(item, OrderFacts("x", "EUR", 0, ()), rows)
    assert rows == ReportRows()


def test_the_watermark_follows_the_log_across_holes_and_late_arrivals(
    chdb_database: ClickHouse,
) -> None:
    """Positions 1, 2, 5, 6 (3 and 4 rolled back); 5 and 6 arrive before 2."""
    runner = chdb_database.runner()
    other = uuid4()
    created = envelope("order.created", 1, CREATED, position=1, previous=0)
    paid = envelope("order.paid", 2, {"amount_cents": 2450, "payment_ref": "p"}, 2, 1)
    second = envelope("order.created", 1, CREATED, position=5, previous=2, aggregate=other)
    reserved = envelope("order.reserved", 2, {}, position=6, previous=5, aggregate=other)
    assert runner.apply([created, second, reserved]) == 3
    assert runner.position() == 1  # 5 and 6 wait for 2
    assert runner.apply([paid, second]) == 1  # 5 is in already
    assert runner.position() == 6
    assert runner.apply([created, paid, second, reserved]) == 0


def _facts(runner: ReportingProjector) -> list[tuple[str, str]]:
    table = runner.physical[ORDER_EVENTS.name]
    result = runner.client.query(f"SELECT toString(order_id), type FROM {table} FINAL")
    return sorted((str(order_id), str(kind)) for order_id, kind in result.result_rows)


def test_a_poison_event_is_parked_and_holds_its_order_while_the_others_flow(
    clickhouse: ClickHouse,
) -> None:
    """Order B's payment breaks the projection (a planted bug); B's later event waits
    behind it, A flows on, the watermark passes them; after the fix a retry applies B's
    events in order."""
    broken = dataclasses.replace(reporting, handlers=dict(reporting.handlers))
    healthy = broken.handlers["order.paid"]

    def failing(e: Envelope, order: OrderFacts, rows: ReportRows) -> None:
        raise ValueError("planted: cannot read this payment")

    broken.handlers["order.paid"] = failing
    runner = ReportingProjector(clickhouse.client(), projection=broken)
    runner.setup()
    a, b = uuid4(), uuid4()
    paid = {"amount_cents": 2450, "payment_ref": "p"}
    batch = [
        envelope("order.created", 1, CREATED, position=1, previous=0, aggregate=a),
        envelope("order.created", 1, CREATED, position=2, previous=1, aggregate=b),
        envelope("order.paid", 2, paid, position=3, previous=2, aggregate=b),
        envelope("order.shipped", 3, {"carrier": "c", "tracking_number": "t"}, 4, 3, b),
        envelope("order.paid", 2, paid, position=5, previous=4, aggregate=a),
    ]
    assert runner.apply(batch[:4]) == 4
    # a later batch: A's payment meets the same bug and is parked too
    assert runner.apply(batch[4:]) == 1
    assert runner.position() == 5  # parked events count as handled
    letters = {(letter.position, letter.status) for letter in runner.letters()}
    assert letters == {(3, "failed"), (4, "held"), (5, "failed")}
    # by hand: only the two creations made facts
    assert _facts(runner) == sorted([(str(a), "order.created"), (str(b), "order.created")])
    assert runner.blocked() == {a, b}

    broken.handlers["order.paid"] = healthy  # the fix
    assert reporting_dead_letters.retry(runner) == (3, 0)
    assert runner.letters() == []
    assert _facts(runner) == sorted(
        [
            (str(a), "order.created"),
            (str(a), "order.paid"),
            (str(b), "order.created"),
            (str(b), "order.paid"),
            (str(b), "order.shipped"),
        ]
    )
    assert runner.blocked() == set()


def test_an_order_event_without_its_creation_is_parked(chdb_database: ClickHouse) -> None:
    runner = chdb_database.runner()
    assert runner.apply([envelope("order.paid", 2, {"amount_cents": 1, "payment_ref": "p"})]) == 1
    [letter] = runner.letters()
    assert (letter.position, letter.status) == (2, "failed")
    assert letter.error.startswith("MissingOrder")
    assert _facts(runner) == []
