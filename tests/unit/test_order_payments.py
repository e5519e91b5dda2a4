"""Order.receive_payment: a provider's money pays the order or is recorded as owed back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from domain.errors import PaymentAlreadyRecorded
from domain.order import Order, OrderStatus
from infra.bootstrap import write_side
from infra.settings import Settings
from tests.unit.test_order import in_status

TOTAL = 2500  # in_status() orders: 2 x 1000 + 1 x 500, EUR


def last_event(order: Order) -> tuple[str, dict[str, object]]:
    pending = order.collect_events()
    return type(pending[-1]).__name__, vars(pending[-1])


def test_a_matching_payment_pays_a_reserved_order() -> None:
    order = in_status(OrderStatus.RESERVED)
    assert order.receive_payment(TOTAL, "EUR", "pi_1", "evt_1") is True
    assert (order.status, order.payment_ref) == (OrderStatus.PAID, "pi_1")


@pytest.mark.parametrize(
    "status",
    [
        OrderStatus.CREATED,
        OrderStatus.PAID,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.CANCELLED,
        OrderStatus.EXPIRED,
        OrderStatus.FAILED,
    ],
)
def test_an_order_that_cannot_take_money_records_it_as_owed_back(status: OrderStatus) -> None:
    order = in_status(status)
    order.collect_events()
    assert order.receive_payment(TOTAL, "EUR", "pi_9", "evt_9") is False
    kind, data = last_event(order)
    assert kind == "order.payment_unapplied"
    assert (data["amount_cents"], data["currency"], data["payment_ref"]) == (TOTAL, "EUR", "pi_9")
    assert (data["provider_event_id"], data["order_status"]) == ("evt_9", status.value)
    assert order.status == status


@pytest.mark.parametrize(("amount", "currency"), [(TOTAL - 1, "EUR"), (TOTAL, "USD")])
def test_another_amount_or_currency_is_owed_back_and_the_order_stays_reserved(
    amount: int, currency: str
) -> None:
    order = in_status(OrderStatus.RESERVED)
    assert order.receive_payment(amount, currency, "pi_1", "evt_1") is False
    assert order.status == OrderStatus.RESERVED
    assert f"{amount} {currency}" in str(last_event(order)[1]["reason"])


def test_the_payment_that_paid_the_order_reported_again_is_refused() -> None:
    order = in_status(OrderStatus.PAID)  # paid by "p-1"
    order.collect_events()
    with pytest.raises(PaymentAlreadyRecorded):
        order.receive_payment(TOTAL, "EUR", "p-1", "evt_2")
    assert order.collect_events() == []


def test_a_snapshot_taken_before_payments_owed_back_loads_with_none(tmp_path: Path) -> None:
    side = write_side(Settings(data_dir=tmp_path, jwt_secret="s" * 32))
    order = in_status(OrderStatus.RESERVED)
    stored = side.app.mapper.to_stored_event(Order.Snapshot.take(order))
    transcoder = side.app.mapper.transcoder
    state = transcoder.decode(stored.state)
    del state["state"]["unapplied_payments"]  # what class version 2 wrote
    state["state"]["class_version"] = 2
    older = dataclasses.replace(stored, state=transcoder.encode(state))
    snapshot = side.app.mapper.to_domain_event(older)
    assert isinstance(snapshot, Order.Snapshot)
    loaded = snapshot.mutate(None)
    side.close()
    assert isinstance(loaded, Order)
    assert (loaded.unapplied_payments, loaded.status) == ({}, OrderStatus.RESERVED)
    assert loaded.receive_payment(1, "EUR", "pi_x", "evt_x") is False
