"""`orderflow privacy`: forgetting a customer's personal data (ADR 0023)."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer

from infra.eventstore.event_store import open_event_store
from infra.settings import Settings

privacy_cli = typer.Typer(help="Personal data: forget a customer.", no_args_is_help=True)


@privacy_cli.command("forget")
def forget(
    customer_id: Annotated[str, typer.Argument(help="The customer whose data to forget.")],
    actor: Annotated[
        str | None, typer.Option(help="Recorded as who asked (default: cli:<OS user>).")
    ] = None,
) -> None:
    """Destroy the customer's data key: their personal fields become unreadable in the
    events, snapshots, exports and Kafka messages that hold them sealed. Irreversible."""
    who = actor or f"cli:{getpass.getuser()}"
    store = open_event_store(Settings())  # held: the library closes its pool when collected
    done = store.forget_personal_data(customer_id, who)
    print(
        json.dumps(
            {
                "customer_id": done.subject,
                "keys_destroyed": done.keys_destroyed,
                "forgotten_at": done.forgotten_at.isoformat(),
                "actor": done.actor,
            }
        )
    )
