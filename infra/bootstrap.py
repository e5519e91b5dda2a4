"""The one place that wires settings to adapters. Everything else receives what it needs."""

from __future__ import annotations

from dataclasses import dataclass

from commands.bus import CommandBus, RetryPolicy
from infra.event_store import OrderFlowApplication, open_event_store
from infra.settings import Settings
from infra.unit_of_work import EventStoreIdempotency, EventStoreUnitOfWork


@dataclass
class WriteSide:
    settings: Settings
    app: OrderFlowApplication
    bus: CommandBus

    def close(self) -> None:
        self.app.close()


def write_side(settings: Settings) -> WriteSide:
    app = open_event_store(settings)
    bus = CommandBus(
        unit_of_work=lambda: EventStoreUnitOfWork(app),
        idempotency=EventStoreIdempotency(app),
        retry=RetryPolicy(attempts=settings.command_attempts),
    )
    return WriteSide(settings, app, bus)
