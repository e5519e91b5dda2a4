"""Both kinds of pool hand out the connection used last: one client at a time keeps to one
PostgreSQL backend (its caches warm) instead of going round all of them."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from infra.bootstrap import write_side
from infra.pool_health import most_recent_first
from infra.readstore.store import PostgresReadStore
from infra.settings import Settings

pytestmark = pytest.mark.postgres


def backend_pids(pool: ConnectionPool[Any], times: int) -> list[int]:
    pids = []
    for _ in range(times):
        with pool.connection() as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            pids.append(row[0] if isinstance(row, tuple) else row["pg_backend_pid"])
    return pids


def test_psycopg_pool_keeps_idle_connections_in_a_deque_it_appends_to() -> None:
    # what most_recent_first relies on; a psycopg_pool that changed this fails here
    pool: ConnectionPool[Any] = ConnectionPool("", open=False)
    assert type(pool._pool) is deque
    most_recent_first(pool)
    pool._pool.append("a")
    pool._pool.append("b")
    assert pool._pool.popleft() == "b"


def test_a_plain_pool_goes_round_its_connections(postgres_url: str) -> None:
    # the contrast: without the change one client meets every backend in turn
    with ConnectionPool(postgres_url, min_size=4, max_size=4, open=True) as pool:
        pool.wait()
        assert len(set(backend_pids(pool, 8))) == 4


def test_the_event_store_pool_hands_out_the_connection_used_last(
    postgres_settings: Settings,
) -> None:
    side = write_side(postgres_settings)
    try:
        pool = side.app.orderflow_recorder.datastore.pool
        assert isinstance(pool, ConnectionPool)
        pool.wait()
        assert pool.get_stats()["pool_available"] >= 4  # several idle ones to choose from
        assert len(set(backend_pids(pool, 8))) == 1
    finally:
        side.close()


def test_the_read_store_pool_hands_out_the_connection_used_last(postgres_url: str) -> None:
    store = PostgresReadStore(postgres_url, pool_size=4)
    try:
        pool = store._pool
        with pool.connection(), pool.connection(), pool.connection():
            pass  # three open, all idle again
        assert len(set(backend_pids(pool, 8))) == 1
    finally:
        store.close()
