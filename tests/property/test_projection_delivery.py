"""An event is never lost or applied twice: whatever order the events arrive in (Kafka
keeps order per aggregate only), however often they are redelivered, and across holes in
the positions, the read models equal the in-order fold of the event store."""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections import defaultdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.ports import CommandContext
from domain.errors import InsufficientStock
from infra.bootstrap import write_side
from infra.eventstore.event_log import EventLog
from infra.readstore.store import SQLiteReadStore
from infra.settings import Settings
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.commands import OrderLineRequest, PlaceOrder, RegisterItem
from schemas.envelope import Envelope
from tests.folding import fold_and_compare
from tests.oracle import Tables, assert_read_models_match_aggregates, expected_read_models

HISTORY: list[Envelope] = []
EXPECTED: Tables = {}  # the read models the history's aggregates call for


def history() -> list[Envelope]:
    """One realistic history, made once, renumbered with holes between positions as
    PostgreSQL leaves them after rolled-back appends."""
    if not HISTORY:
        side = write_side(Settings(data_dir=Path(tempfile.mkdtemp()), jwt_secret="h" * 32))
        context = CommandContext(correlation_id="history", actor="test")
        rnd = random.Random(11)
        for sku in ("A", "B", "C"):
            side.bus.handle(
                RegisterItem(sku=sku, name=sku, unit_price_cents=7, on_hand=30), context
            )
        for _ in range(40):
            lines = tuple(
                OrderLineRequest(sku=s, quantity=rnd.randint(1, 3))
                for s in rnd.sample(["A", "B", "C"], 2)
            )
            with contextlib.suppress(InsufficientStock):
                side.bus.handle(PlaceOrder(customer_id="c", lines=lines), context)
        stored = [e for batch in EventLog(side.app).iterate(0) for e in batch]
        EXPECTED.update(expected_read_models(side.app))
        side.close()
        holed = {e.position: e.position * 3 + rnd.randint(0, 2) for e in stored}
        HISTORY.extend(
            e.model_copy(
                update={
                    "position": holed[e.position],
                    "previous_position": holed.get(e.previous_position, 0),
                }
            )
            for e in stored
        )
    return HISTORY


def interleaving(events: list[Envelope], rnd: random.Random) -> list[Envelope]:
    """A random merge of the per-aggregate streams: what partitions can deliver."""
    streams: dict[str, list[Envelope]] = defaultdict(list)
    for e in events:
        streams[str(e.aggregate_id)].append(e)
    queues = [list(s) for s in streams.values()]
    merged = []
    while queues:
        queue = rnd.choice(queues)
        merged.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return merged


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), redeliveries=st.integers(0, 30), batch=st.integers(1, 40))
def test_any_delivery_order_with_redeliveries_gives_the_fold(
    seed: int, redeliveries: int, batch: int
) -> None:
    rnd = random.Random(seed)
    events = history()
    delivered = interleaving(events, rnd)
    for _ in range(redeliveries):  # a crash before the offset commit replays a stretch
        start = rnd.randrange(len(delivered))
        delivered[start:start] = delivered[start : start + rnd.randint(1, 20)]
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteReadStore(Path(directory) / "read.sqlite")
        runner = SqlProjector(store, SQL_READ_MODELS)
        runner.setup()
        for n in range(0, len(delivered), batch):
            runner.apply(delivered[n : n + batch])
        assert set(runner.positions().values()) == {events[-1].position}
        fold_and_compare(store, ListLog(events))
        assert_read_models_match_aggregates(store, EXPECTED)
        store.close()


class ListLog(EventLog):
    """The same history, read from memory, for the reference fold."""

    def __init__(self, events: list[Envelope]) -> None:
        self.events = events

    def head(self) -> int:
        return self.events[-1].position

    def read(self, after: int, limit: int = 1000) -> list[Envelope]:
        return [e for e in self.events if e.position > after][:limit]
