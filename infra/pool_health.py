"""Connection pools that get over a database restart at once.

After PostgreSQL restarts, every idle connection in a pool is dead. psycopg_pool's check
on checkout finds them one at a time, sleeping a growing backoff (1 s, 2 s...) after
each, so a pool of ten took tens of seconds to serve again. This check, on the first dead
connection it meets, checks every idle one at once: the dead ones are replaced together
and the next try gets a live connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

Check = Callable[[Any], None]


def check_all_when_one_fails(pool: Callable[[], ConnectionPool[Any]]) -> Check:
    """The check to give `pool()` (a callable: the pool may not exist yet)."""

    def check(conn: Any) -> None:
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            pool().check()  # the idle ones, synchronously; `conn` is discarded by the caller
            raise

    return check


def install(pool: ConnectionPool[Any]) -> None:
    """For a pool built by a library: psycopg_pool takes its check at construction only."""
    pool._check = check_all_when_one_fails(lambda: pool)
