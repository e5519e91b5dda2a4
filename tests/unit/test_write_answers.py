"""The write API renders each command's result as its route's response model: every field
but the position, with the aggregate's values, and the position added on the way out."""

from __future__ import annotations

import json
from uuid import UUID

from commands.bus import CommandBus, Reply, RetryPolicy
from commands.ports import CommandContext
from schemas.commands import (
    AdjustStock,
    ChangePrice,
    Command,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    RegisterItem,
    SettlePayment,
)
from schemas.responses import (
    Accepted,
    ItemRegistered,
    OrderPlaced,
    OrderStatusChanged,
    PaymentSettled,
    PriceSet,
    StockLevel,
)
from tests.commanding import placed
from tests.fakes import FakeStore
from write_api.answers import answer_as, respond

CONTEXT = CommandContext(correlation_id="answers", actor="tester")


def fields_but_position(model: type[Accepted]) -> set[str]:
    return set(model.model_fields) - {"position"}


def test_each_response_model_is_rendered_from_the_aggregate_it_names() -> None:
    store = FakeStore()
    bus = CommandBus(store.unit_of_work, store, RetryPolicy(attempts=1))

    def sent(command: Command, model: type[Accepted], status: int = 200) -> Reply:
        reply = bus.answer(command, CONTEXT, answer_as(model, status))
        assert set(reply.answer.body) == fields_but_position(model)
        model.model_validate({**reply.answer.body, "position": reply.position})
        return reply

    registered = sent(RegisterItem(sku="A", name="a", unit_price_cents=250), ItemRegistered, 201)
    assert registered.answer == type(registered.answer)(201, {"sku": "A", "version": 1})
    adjusted = sent(AdjustStock(sku="A", delta=9, reason="count"), StockLevel).answer.body
    item = store.item("A")
    assert adjusted == {"sku": "A", "on_hand": 9, "reserved": 0, "available": 9, "version": 2}
    assert (item.on_hand, item.version) == (9, 2)
    priced = sent(ChangePrice(sku="A", unit_price_cents=300), PriceSet).answer.body
    assert priced == {"sku": "A", "unit_price_cents": 300, "version": 3}

    lines = (OrderLineRequest(sku="A", quantity=2),)
    order = sent(PlaceOrder(customer_id="c", lines=lines), OrderPlaced, 201)
    order_id = placed(bus.handle(PlaceOrder(customer_id="c", lines=lines), CONTEXT)).order_id
    first = store.order(json_uuid(order.answer.body["order_id"]))
    assert order.answer.body == {
        "order_id": str(first.id),
        "customer_id": "c",
        "status": "reserved",
        "currency": first.currency,
        "total_cents": 600,
        "lines": [{"sku": "A", "quantity": 2, "unit_price_cents": 300}],
        "version": first.version,
    }
    paid = sent(
        PayOrder(order_id=order_id, amount_cents=600, payment_ref="p"), OrderStatusChanged
    ).answer.body
    assert paid == {"order_id": str(order_id), "status": "paid", "version": 3}
    owed = SettlePayment(
        order_id=order_id,
        amount_cents=600,
        currency="EUR",
        payment_ref="p2",
        provider_event_id="evt",
    )
    settled = sent(owed, PaymentSettled).answer.body
    assert (settled["applied"], settled["status"]) == (False, "paid")


def test_the_answer_goes_out_with_the_position_and_the_version_as_etag() -> None:
    store = FakeStore()
    bus = CommandBus(store.unit_of_work, store, RetryPolicy(attempts=1))
    register = RegisterItem(sku="A", name="a", unit_price_cents=250)
    reply = bus.answer(register, CONTEXT, answer_as(ItemRegistered, 201))
    first = respond(reply)
    assert (first.status_code, first.headers["ETag"]) == (201, '"1"')
    assert json.loads(bytes(first.body)) == {"sku": "A", "version": 1, "position": len(store.log)}
    assert "Idempotent-Replayed" not in first.headers
    replayed = respond(Reply(reply.answer, reply.position, replayed=True))
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.body == first.body


def json_uuid(text: object) -> UUID:
    return UUID(str(text))
