"""The projector vacuums its claims table as it churns it: on PostgreSQL each applied event
leaves a dead `projection_pending` row, and without a vacuum the table's heap grows with
every claim ever made (the next compaction's delete walks them all); with it, the space of
the deleted claims is used again and the table stays near its live size."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from infra.bootstrap import read_store
from infra.settings import Settings
from projections.claims_vacuum import ClaimsVacuum
from projections.ports import ReadStore
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.envelope import Envelope

pytestmark = pytest.mark.postgres
CLAIMS, BATCH = 20_000, 500
# A claim row holds the set's key (62 characters), two bigints and a tuple header: well
# over 100 bytes with its line pointer, so an 8 kB page holds fewer than 80 of them.
ROWS_PER_PAGE_AT_MOST = 80


@pytest.fixture
def store(tmp_path: Path, postgres_url: str) -> Iterator[ReadStore]:
    opened = read_store(Settings(data_dir=tmp_path, read_database_url=postgres_url))
    SqlProjector(opened, SQL_READ_MODELS).setup(claim_set=True)  # as `orderflow project`
    yield opened
    opened.close()


def unhandled(position: int) -> Envelope:
    """An event no read model handles: it is claimed and compacted like any other."""
    fields: dict[str, Any] = {
        "type": "bench.nothing",
        "aggregate_id": uuid.uuid4(),
        "position": position,
        "previous_position": position - 1,
        "occurred_at": datetime.now(UTC),
    }
    return Envelope.model_construct(**fields)


def claim_and_compact(store: ReadStore, first: int, vacuum: ClaimsVacuum) -> int:
    """Applies CLAIMS events from `first` in batches; the claims table's heap, in pages."""
    projector = SqlProjector(store, SQL_READ_MODELS)
    projector.vacuum = vacuum
    for start in range(first, first + CLAIMS, BATCH):
        projector.apply([unhandled(p) for p in range(start, start + BATCH)])
    assert set(projector.positions().values()) == {first + CLAIMS - 1}
    with store.read() as tx:
        left = tx.one("SELECT count(*) AS n FROM projection_pending")
        pages = tx.one(
            "SELECT pg_relation_size('projection_pending') "
            "/ current_setting('block_size')::int AS n"
        )
    assert left is not None
    assert pages is not None
    assert left["n"] == 0  # every claim compacted
    return int(pages["n"])


def test_the_claims_table_stays_near_its_live_size(store: ReadStore) -> None:
    without = claim_and_compact(store, 1, ClaimsVacuum(every=10**9, after_s=math.inf))
    with store.read() as tx:  # a fresh table for the second projector
        tx.execute("TRUNCATE projection_pending")
    vacuum = ClaimsVacuum(every=1_000, after_s=math.inf)  # by count alone
    with_vacuum = claim_and_compact(store, CLAIMS + 1, vacuum)

    assert vacuum.runs == CLAIMS // 1_000
    # without a vacuum nothing is reused: every claim ever made has its place in the heap
    assert without >= CLAIMS // ROWS_PER_PAGE_AT_MOST
    # with one every 1,000 events, about 1,500 claims' worth (live and dead) at any time
    assert with_vacuum * 5 < without, (with_vacuum, without)
