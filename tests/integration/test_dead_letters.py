"""A poison event goes to dead letters with its error; other aggregates keep flowing; the
aggregate's later events wait behind it; a retry after the fix gives the clean fold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from commands.ports import CommandContext
from infra.bootstrap import ReadSide, WriteSide
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections import dead_letters
from projections.feed import LogFeed
from projections.orders import orders
from projections.read_model import Handler
from projections.registry import SQL_BY_NAME
from schemas.commands import OrderLineRequest, PayOrder, PlaceOrder, RegisterItem, ShipOrder
from schemas.envelope import Envelope
from tests.commanding import placed as facts
from tests.folding import fold_and_compare
from tests.oracle import (
    assert_read_models_match_aggregates,
    differences,
    expected_read_models,
)

CONTEXT = CommandContext(correlation_id="dead-letters", actor="test")


class Poison:
    """Makes the orders projection fail on one order's payment while switched on."""

    def __init__(self, original: Handler) -> None:
        self.original, self.victim, self.calls = original, None, 0

    def __call__(self, e: Envelope, db: object) -> None:
        if e.aggregate_id == self.victim:
            self.calls += 1
            raise RuntimeError("the projection cannot handle this payment")
        self.original(e, db)  # type: ignore[arg-type]


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> Poison:
    fault = Poison(orders.handlers["order.paid"])
    monkeypatch.setitem(orders.handlers, "order.paid", fault)
    return fault


def order(side: WriteSide, pay: bool = True, ship: bool = False) -> UUID:
    lines = (OrderLineRequest(sku="A", quantity=1),)
    order_id = facts(side.bus.handle(PlaceOrder(customer_id="c", lines=lines), CONTEXT)).order_id
    if pay:
        side.bus.handle(PayOrder(order_id=order_id, amount_cents=100, payment_ref="p"), CONTEXT)
    if ship:
        side.bus.handle(ShipOrder(order_id=order_id, carrier="DHL", tracking_number="T"), CONTEXT)
    return order_id


def status(reads: ReadSide, order_id: UUID) -> str:
    with reads.store.read() as tx:
        row = tx.one("SELECT status FROM orders WHERE order_id = %s", (str(order_id),))
    assert row is not None
    return str(row["status"])


@pytest.fixture
def poisoned(side: WriteSide, reads: ReadSide, feed: LogFeed, poison: Poison) -> UUID:
    side.bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=100, on_hand=100), CONTEXT)
    first = order(side)
    poison.victim = order(side, ship=True)  # type: ignore[assignment]
    last = order(side)
    feed.catch_up()
    assert (status(reads, first), status(reads, last)) == ("paid", "paid")
    assert poison.victim is not None
    return poison.victim


def test_a_poison_event_is_parked_and_the_rest_flows_on(
    side: WriteSide, reads: ReadSide, feed: LogFeed, poisoned: UUID, poison: Poison
) -> None:
    parked = dead_letters.listing(reads.store)
    assert [(d.event_type, d.status) for d in parked] == [
        ("order.paid", "failed"),
        ("order.shipped", "held"),
    ]
    assert all(d.aggregate_id == str(poisoned) for d in parked)
    assert "cannot handle this payment" in parked[0].error
    assert poison.calls == dead_letters.ATTEMPTS  # bounded retries, then parked
    assert status(reads, poisoned) == "reserved"  # held back, never out of order
    assert set(reads.runner.positions().values()) == {EventLog(side.app).head()}
    stale = differences(reads.store, expected_read_models(side.app), limit=100)
    assert stale
    assert all(f"orders['{poisoned}']" in line for line in stale), stale

    later = order(side)
    feed.catch_up()
    assert status(reads, later) == "paid"


def test_a_retry_before_the_fix_keeps_them_parked_and_after_it_gives_the_fold(
    side: WriteSide, reads: ReadSide, feed: LogFeed, poisoned: UUID, poison: Poison
) -> None:
    assert dead_letters.retry(reads.store, SQL_BY_NAME) == (0, 2)
    poison.victim = None  # the fix
    assert dead_letters.retry(reads.store, SQL_BY_NAME) == (2, 0)
    assert status(reads, poisoned) == "shipped"
    assert dead_letters.listing(reads.store) == []
    fold_and_compare(reads.store, EventLog(side.app))
    assert_read_models_match_aggregates(reads.store, side.app)


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_DATA_DIR=str(settings.data_dir),
        COLUMNS="200",
        ORDERFLOW_JWT_SECRET=settings.token_secret,
    )
    if settings.database_url:
        env.update(
            ORDERFLOW_DATABASE_URL=settings.database_url,
            ORDERFLOW_PAYMENT_WEBHOOK_SECRET=settings.webhook_secret,
        )
    return env


def test_the_cli_lists_shows_and_retries_after_the_fix(
    side: WriteSide, reads: ReadSide, poisoned: UUID, poison: Poison
) -> None:
    env = cli_env(side.settings)
    orderflow = [str(Path(sys.executable).with_name("orderflow")), "dead-letters"]
    listed = subprocess.run([*orderflow, "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert "order.paid" in listed.stdout
    assert "held" in listed.stdout
    first = dead_letters.listing(reads.store)[0].id
    shown = subprocess.run(
        [*orderflow, "show", str(first)], env=env, capture_output=True, text=True
    )
    assert f'"aggregate_id": "{poisoned}"' in shown.stdout
    # a new process has no poison in it: it is the fixed code
    retried = subprocess.run(
        [*orderflow, "retry", "--all"], env=env, capture_output=True, text=True
    )
    assert retried.returncode == 0, retried.stderr
    assert "released 2, still parked 0" in retried.stderr
    poison.victim = None  # the reference fold runs here: with the fixed code too
    fold_and_compare(reads.store, EventLog(side.app))
    assert_read_models_match_aggregates(reads.store, side.app)
