"""A log scan's first batch is short (`event_log.FIRST_FETCH` rows), so that its reader
starts while the next batch is fetched; the batches after it are whole. Across that
boundary, and a hole in the positions there, nothing is lost, repeated or misnamed: the
scans give the general translation's envelopes (`EventLog.iterate`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.inventory import InventoryItem
from infra.eventstore.event_log import FIRST_FETCH, EventLog
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.settings import Settings
from tests.log_holes import burn

pytestmark = pytest.mark.postgres
BATCH = 1000


@pytest.fixture
def app(postgres_settings: Settings) -> Iterator[OrderFlowApplication]:
    opened = open_event_store(postgres_settings)
    yield opened
    opened.close()


def registered(count: int, start: int) -> list[InventoryItem]:
    return [
        InventoryItem(sku=f"S-{n}", name=f"item {n}", unit_price_cents=100)
        for n in range(start, start + count)
    ]


def test_the_first_batch_is_short_and_nothing_is_lost_across_it(
    app: OrderFlowApplication,
) -> None:
    before_hole = FIRST_FETCH - 1  # the hole lies just before the second batch's first row
    app.save(*registered(before_hole, 0))
    burn(app, 3)
    app.save(*registered(2 * FIRST_FETCH, before_hole))
    log = EventLog(app)
    general = [e for batch in log.iterate(0, batch=BATCH) for e in batch]
    assert len(general) == 3 * FIRST_FETCH - 1

    scanned = list(log.scan(0, batch=BATCH))
    assert [len(batch) for batch in scanned] == [FIRST_FETCH, 2 * FIRST_FETCH - 1]
    assert [e for batch in scanned for e in batch] == general
    assert scanned[1][0].previous_position == scanned[0][-1].position
    assert scanned[0][-1].position == scanned[0][-2].position + 4  # across the hole

    plan = log.shares(log.head())
    shares = [list(log.share_scan(share, plan, batch=BATCH)) for share in (0, 1)]
    assert all(len(batches[0]) <= FIRST_FETCH for batches in shares if batches)
    together = sorted(
        (e for batches in shares for batch in batches for e in batch), key=lambda e: e.position
    )
    assert together == general
