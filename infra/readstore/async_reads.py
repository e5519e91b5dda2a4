"""Reads of the PostgreSQL read store from the event loop, through psycopg's asyncio pool:
for the read API's hottest answers, with no hop to a worker thread. The hop was the
largest single cost of an order's GET (ADR 0015, session 24 update).

The pool is opened in the server's event loop (the read API's lifespan) and only used
there; it is configured as the store's own pool is (infra/readstore/store.py): autocommit
reads, each statement its own snapshot, connections checked when handed out and all of
them once one is dead, the one used last handed out first."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from infra.pool_health import async_check_all_when_one_fails, async_most_recent_first
from infra.readstore.store import POOL_TIMEOUT_S, RECONNECT_TIMEOUT_S
from projections.ports import Row


class AsyncReads:
    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._pool: AsyncConnectionPool[AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
            check=async_check_all_when_one_fails(lambda: self._pool),
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
        )
        async_most_recent_first(self._pool)

    async def open(self) -> None:
        """In the event loop that will use it; does not wait for the database."""
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncReader]:
        async with self._pool.connection() as conn:
            yield AsyncReader(conn)


class AsyncReader:
    """One connection's reads, as rows of column name to value (the store's `Tx.all`)."""

    def __init__(self, conn: AsyncConnection[Row]) -> None:
        self._conn = conn

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(sql, params)
        return await cursor.fetchall()
