"""The chain under concurrent writers, and an export re-imported for a replay."""

from __future__ import annotations

import io
import random
import threading
import uuid
from pathlib import Path

import pytest

from commands.errors import ApplicationError
from commands.ports import CommandContext
from domain.errors import DomainError
from infra.audit.export import ExportWriter, read_export
from infra.audit.queries import Audit
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.feed import LogFeed
from schemas.commands import (
    CancelOrder,
    OrderLineRequest,
    PayOrder,
    PlaceOrder,
    ReceiveStock,
    RegisterItem,
)
from tests.commanding import placed as facts
from tests.folding import rows
from tests.harness.postgres import PostgresServer

SKUS = [f"S{n}" for n in range(6)]


def busy_writers(settings: Settings, writers: int, commands_each: int) -> None:
    side = write_side(settings)
    context = CommandContext(correlation_id="scale", actor="test")
    for sku in SKUS:
        side.bus.handle(
            RegisterItem(sku=sku, name=sku, unit_price_cents=10, on_hand=100_000), context
        )

    def write(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(commands_each):
            try:
                lines = tuple(
                    OrderLineRequest(sku=s, quantity=rnd.randint(1, 3)) for s in rnd.sample(SKUS, 2)
                )
                placed = facts(
                    side.bus.handle(PlaceOrder(customer_id=f"c{seed}", lines=lines), context)
                )
                order_id = placed.order_id
                if rnd.random() < 0.5:
                    side.bus.handle(
                        PayOrder(
                            order_id=order_id, amount_cents=placed.total_cents, payment_ref="p"
                        ),
                        context,
                    )
                else:
                    side.bus.handle(CancelOrder(order_id=order_id, reason="x"), context)
                side.bus.handle(ReceiveStock(sku=rnd.choice(SKUS), quantity=1), context)
            except (DomainError, ApplicationError):
                pass

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    side.close()


@pytest.mark.postgres
def test_thousands_of_events_from_concurrent_writers_verify(postgres_settings: Settings) -> None:
    busy_writers(
        postgres_settings.model_copy(update={"postgres_pool_size": 12}), writers=8, commands_each=40
    )
    side = write_side(postgres_settings)
    report = Audit(side.app).verify(batch=500)
    head = EventLog(side.app).head()
    side.close()
    assert head > 2000
    assert (report.ok, report.last_position, report.first_bad_position) == (True, head, None)


def read_models(settings: Settings) -> dict[str, list[dict[str, object]]]:
    """Every read model, fed from the store."""
    writes, reads = write_side(settings), read_side(settings)
    LogFeed(EventLog(writes.app), reads.runner).catch_up()
    models = {
        table: [dict(row) for row in rows(reads.store, table)]
        for table in ("orders", "order_lines", "inventory_levels", "customer_orders")
    }
    writes.close()
    reads.close()
    return models


def empty_store_like(settings: Settings, request: pytest.FixtureRequest, place: Path) -> Settings:
    """A new, empty store of the same kind: a data dir, or a fresh PostgreSQL database."""
    if settings.embedded:
        return settings.model_copy(update={"data_dir": place})
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database(f"replay_{uuid.uuid4().hex[:8]}")
    return settings.model_copy(update={"data_dir": place, "database_url": url})


def test_an_export_re_imports_into_an_empty_store_and_replays_to_the_same_read_models(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    busy_writers(settings, writers=2, commands_each=25)
    source = write_side(settings)
    exported = io.StringIO()
    writer = ExportWriter(exported, "jsonl")
    for event in Audit(source.app).exported(batch=100):
        writer.write(event)
    writer.finish()
    source_links = source.app.orderflow_recorder.chain_rows(0, 100_000)
    source.close()

    empty = empty_store_like(settings, request, tmp_path / "replay")
    target = write_side(empty)
    lines = exported.getvalue().splitlines()
    written = Audit(target.app).import_export(lambda: read_export(lines))
    assert written == len(lines) - 1  # all but the head line
    assert Audit(target.app).verify().ok
    # positions and links kept: the very same chain
    assert target.app.orderflow_recorder.chain_rows(0, 100_000) == source_links
    target.close()
    assert read_models(empty) == read_models(settings)
