"""`orderflow privacy forget CUSTOMER_ID` on embedded SQLite: the key is destroyed, the
forgetting recorded with the actor, the order loads without its address, and `audit
state` names the field as redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path
from uuid import UUID

from typer.testing import CliRunner

from domain.order import Order, ShippingAddress, priced_line
from infra.cli import app as cli
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings

ADDRESS = ShippingAddress(
    recipient="Edsger Dijkstra",
    line1="Plantage Muidergracht 24",
    line2=None,
    postal_code="1018 TV",
    city="Amsterdam",
    country="NL",
)


def test_the_cli_forgets_a_customer(tmp_path: Path) -> None:
    app = open_event_store(Settings(data_dir=tmp_path))
    order = Order.place("edsger", [priced_line("A", 1, 100)], "EUR", ADDRESS)
    app.save(order)
    runner = CliRunner()
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(tmp_path))

    done = runner.invoke(cli, ["privacy", "forget", "edsger", "--actor", "dpo@shop"], env=env)
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert (answer["customer_id"], answer["keys_destroyed"], answer["actor"]) == (
        "edsger",
        1,
        "dpo@shop",
    )
    assert [actor for _, _, actor in app.personal_keys.forgotten("edsger")] == ["dpo@shop"]
    fresh = open_event_store(Settings(data_dir=tmp_path))
    loaded: object = fresh.repository.get(order.id)
    assert isinstance(loaded, Order)
    assert (loaded.customer_id, loaded.shipping_address) == ("edsger", None)

    state = runner.invoke(cli, ["audit", "state", str(order.id)], env=env)
    assert state.exit_code == 0, state.output
    shown = json.loads(state.stdout)
    assert (shown["shipping_address"], shown["redacted"]) == (None, ["shipping_address"])
    assert UUID(shown["order_id"]) == order.id
