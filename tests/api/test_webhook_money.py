"""A webhook never loses money (issue 14, point 2), on SQLite and PostgreSQL:

- a payment the order cannot take is recorded on the order (order.payment_unapplied) with
  its amount, the provider's ids and the reason, and answered 200;
- a passing failure (conflicts outlasting the retries, the store unreachable) is 503, and
  the provider's redelivery then records the payment exactly once.

Oracle: the order and its events as the event store holds them (domain classes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from commands.bus import CommandBus, RetryPolicy
from commands.ports import CommandContext, IdempotentAnswer
from infra.bootstrap import WriteSide
from infra.eventstore.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork
from schemas.auth import Role
from schemas.commands import ExpireOrder, RecordPaymentFailure
from tests.api.test_webhooks import deliver, event, state
from tests.api.test_write_api import appended, is_problem
from write_api.app import create_app

Auth = Callable[..., dict[str, str]]
STAFF = CommandContext(correlation_id="test", actor="test")


@pytest.fixture
def order(write_client: TestClient, auth: Auth) -> dict[str, Any]:
    write_client.post(
        "/inventory",
        json={"sku": "KB", "name": "k", "unit_price_cents": 1250, "on_hand": 5},
        headers=auth(Role.OPERATOR),
    )
    placed: dict[str, Any] = write_client.post(
        "/orders",
        json={"lines": [{"sku": "KB", "quantity": 2}]},  # 2500 EUR
        headers=auth(Role.CUSTOMER, "alice"),
    ).json()
    return placed


def events_of(side: WriteSide, order_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, attributes) of every stored event of the order, through the domain classes."""
    return [(type(e).__name__, vars(e)) for e in side.app.events.get(UUID(order_id))]


def unapplied(side: WriteSide, order_id: str) -> list[dict[str, Any]]:
    return [data for kind, data in events_of(side, order_id) if kind == "order.payment_unapplied"]


def paid_events(side: WriteSide, order_id: str) -> int:
    return sum(kind == "order.paid" for kind, _ in events_of(side, order_id))


def cancel(client: TestClient, auth: Auth, order_id: str) -> None:
    response = client.post(
        f"/orders/{order_id}/cancellation",
        json={"reason": "changed my mind"},
        headers=auth(Role.CUSTOMER, "alice"),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("ending", ["cancelled", "expired"])
def test_a_payment_for_an_ended_order_is_recorded_as_owed_back(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any], ending: str
) -> None:
    order_id = order["order_id"]
    if ending == "cancelled":
        cancel(write_client, auth, order_id)
    else:
        side.bus.handle(ExpireOrder(order_id=UUID(order_id)), STAFF)
    version = state(side, order_id).version

    answer = deliver(write_client, side, event("payment_intent.succeeded", order_id))

    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["position"]) == ("refund_due", appended(side))
    after = state(side, order_id)
    assert (after.status, after.version) == (ending, version + 1)
    [owed] = unapplied(side, order_id)
    assert {k: owed[k] for k in ("amount_cents", "currency", "payment_ref")} == {
        "amount_cents": 2500,
        "currency": "EUR",
        "payment_ref": "pi_1",
    }
    assert (owed["provider_event_id"], owed["order_status"]) == ("evt_1", ending)
    assert ending in owed["reason"]


@pytest.mark.parametrize(("amount", "currency"), [(2400, "eur"), (2500, "usd")])
def test_a_payment_of_another_amount_or_currency_is_owed_back_and_the_order_waits(
    write_client: TestClient, side: WriteSide, order: dict[str, Any], amount: int, currency: str
) -> None:
    order_id = order["order_id"]
    wrong = deliver(
        write_client, side, event("payment_intent.succeeded", order_id, amount, currency)
    )
    assert (wrong.status_code, wrong.json()["status"]) == (200, "refund_due")
    assert state(side, order_id).status == "reserved"
    [owed] = unapplied(side, order_id)
    assert (owed["amount_cents"], owed["currency"]) == (amount, currency.upper())
    assert f"{amount} {currency.upper()}" in owed["reason"]
    assert "2500 EUR" in owed["reason"]

    right = event("payment_intent.succeeded", order_id, event_id="evt_2", id="pi_2")
    assert deliver(write_client, side, right).json()["status"] == "applied"
    assert (state(side, order_id).status, state(side, order_id).payment_ref) == ("paid", "pi_2")


def test_a_second_payment_of_a_paid_order_is_owed_back(
    write_client: TestClient, side: WriteSide, order: dict[str, Any]
) -> None:
    order_id = order["order_id"]
    deliver(write_client, side, event("payment_intent.succeeded", order_id))
    twice = deliver(
        write_client, side, event("payment_intent.succeeded", order_id, event_id="e2", id="pi_2")
    )
    assert twice.json()["status"] == "refund_due"
    [owed] = unapplied(side, order_id)
    assert (owed["payment_ref"], owed["order_status"]) == ("pi_2", "paid")
    assert "pi_1" in owed["reason"]
    assert (state(side, order_id).payment_ref, paid_events(side, order_id)) == ("pi_1", 1)


def test_the_provider_confirming_a_payment_staff_recorded_appends_nothing(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any]
) -> None:
    order_id = order["order_id"]
    manual = write_client.post(
        f"/orders/{order_id}/payments",
        json={"amount_cents": 2500, "payment_ref": "pi_1"},
        headers=auth(Role.OPERATOR),
    )
    assert manual.status_code == 200
    before = appended(side)
    answer = deliver(write_client, side, event("payment_intent.succeeded", order_id))
    assert (answer.status_code, answer.json()["status"]) == (200, "applied")
    assert appended(side) == before
    assert unapplied(side, order_id) == []


def test_an_unapplied_payment_delivered_again_is_recorded_once(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any]
) -> None:
    cancel(write_client, auth, order["order_id"])
    body = event("payment_intent.succeeded", order["order_id"])
    first = deliver(write_client, side, body)
    again = deliver(write_client, side, body)
    assert again.json() == first.json()
    before = appended(side)
    other_event = event("payment_intent.succeeded", order["order_id"], event_id="evt_again")
    known = deliver(write_client, side, other_event)  # same payment, another event id
    assert (known.status_code, known.json()["status"]) == (200, "applied")
    assert appended(side) == before
    assert len(unapplied(side, order["order_id"])) == 1


def test_the_refund_of_a_payment_owed_back_settles_it(
    write_client: TestClient, side: WriteSide, auth: Auth, order: dict[str, Any]
) -> None:
    order_id = order["order_id"]
    cancel(write_client, auth, order_id)
    deliver(write_client, side, event("payment_intent.succeeded", order_id))
    assert state(side, order_id).unapplied_payments == {"pi_1": 2500}
    wrong = event(
        "charge.refunded", order_id, event_id="evt_r0", id="ch_0", payment_intent="pi_1"
    ).replace(b'"amount": 2500', b'"amount": 2000')
    assert deliver(write_client, side, wrong).json()["status"] == "refused"  # not what's owed
    refund = event(
        "charge.refunded",
        order_id,
        event_id="evt_r",
        id="ch_1",
        amount_refunded=2500,
        payment_intent="pi_1",
    )
    answer = deliver(write_client, side, refund)
    assert (answer.status_code, answer.json()["status"]) == (200, "applied")
    after = state(side, order_id)
    assert (after.unapplied_payments, after.status) == ({}, "cancelled")
    [returned] = [
        d for k, d in events_of(side, order_id) if k == "order.unapplied_payment_refunded"
    ]
    assert (returned["payment_ref"], returned["refund_ref"], returned["amount_cents"]) == (
        "pi_1",
        "ch_1",
        2500,
    )


def test_a_payment_for_an_unknown_order_is_404_so_the_provider_keeps_it(
    write_client: TestClient, side: WriteSide
) -> None:
    before = appended(side)
    body = event("payment_intent.succeeded", "5b6f3c52-1f7e-4f64-9a53-0d7f0d0e2b10")
    is_problem(deliver(write_client, side, body), 404, "unknown-order")
    assert appended(side) == before


def client_over(side: WriteSide, unit_of_work: Callable[[], EventStoreUnitOfWork]) -> TestClient:
    bus = CommandBus(unit_of_work, EventStoreIdempotency(side.app), RetryPolicy(attempts=3))
    return TestClient(create_app(WriteSide(side.settings, side.app, bus)))


@dataclass
class Rivals:
    """While `left` is above 0, each commit of a command sent through `client` is beaten by
    a real rival write to the same order (a failed payment): a genuine version conflict."""

    client: TestClient
    left: int = 0


@pytest.fixture
def rivals(side: WriteSide, order: dict[str, Any]) -> Iterator[Rivals]:
    found: list[Rivals] = []

    class Beaten(EventStoreUnitOfWork):
        def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
            if found[0].left > 0:
                found[0].left -= 1
                rival = RecordPaymentFailure(
                    order_id=UUID(order["order_id"]), reason="rival", payment_ref="rival"
                )
                side.bus.handle(rival, STAFF)
            return super().commit(context, answer)

    with client_over(side, lambda: Beaten(side.app)) as client:
        found.append(Rivals(client))
        yield found[0]


def test_a_conflict_outlasting_the_retries_is_503_and_the_redelivery_pays_once(
    side: WriteSide, order: dict[str, Any], rivals: Rivals
) -> None:
    client = rivals.client
    order_id = order["order_id"]
    body = event("payment_intent.succeeded", order_id)
    rivals.left = 3  # every one of the 3 attempts loses
    busy = deliver(client, side, body)
    is_problem(busy, 503, "concurrency-conflict")
    assert busy.headers["retry-after"] == "1"
    assert (state(side, order_id).status, paid_events(side, order_id)) == ("reserved", 0)

    again = deliver(client, side, body)
    assert (again.status_code, again.json()["status"]) == (200, "applied")
    assert deliver(client, side, body).json()["position"] == again.json()["position"]
    paid = state(side, order_id)
    assert (paid.status, paid.payment_ref, paid.payment_failures) == ("paid", "pi_1", 3)
    assert paid_events(side, order_id) == 1


def test_an_unreachable_event_store_is_503_and_the_redelivery_pays_once(
    side: WriteSide, order: dict[str, Any]
) -> None:
    down = [True]

    class Unreachable(EventStoreUnitOfWork):
        def commit(self, context: CommandContext, answer: IdempotentAnswer | None) -> int:
            if down[0]:
                raise OperationalError("connection refused")
            return super().commit(context, answer)

    body = event("payment_intent.succeeded", order["order_id"])
    with client_over(side, lambda: Unreachable(side.app)) as client:
        is_problem(deliver(client, side, body), 503, "unavailable")
        assert paid_events(side, order["order_id"]) == 0
        down[0] = False
        assert deliver(client, side, body).json()["status"] == "applied"
    assert paid_events(side, order["order_id"]) == 1
