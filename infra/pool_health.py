"""Connection pools that get over a database restart at once, without a round trip per
checkout, and that hand out the connection used last.

After PostgreSQL restarts, every idle connection in a pool is dead. psycopg_pool's check
on checkout finds them one at a time, sleeping a growing backoff (1 s, 2 s...) after
each, so a pool of ten took tens of seconds to serve again. This check, on the first dead
connection it meets, checks every idle one at once: the dead ones are replaced together
and the next try gets a live connection.

The check itself is a round trip (psycopg_pool's ping). A busy write API checks out a
connection several times per command, each one last handed out a few milliseconds
before: pinging those found nothing in the outage tests and cost 7-13 % of a command
(ADR 0016). So a connection handed out less than `FRESH_S` ago, and not marked broken by
psycopg, is given out unpinged. A restart takes longer than that; if one of these is dead
all the same, its first statement fails as a transient error (retried by the library's
appends, a 503 elsewhere) and the pool discards it when it comes back broken.

psycopg_pool hands its idle connections out in turn (first in, first out), so one client
at a time goes through all ten of a pool's backends: each server process then runs a
command with cold caches. Handed out most recently used first, one client keeps one
backend warm, and PostgreSQL's CPU per appended order fell from 0.40 to 0.29 ms
(ADR 0016, session 23 update); under load every connection is in use either way."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from psycopg_pool import ConnectionPool

Check = Callable[[Any], None]
FRESH_S = 1.0


def check_all_when_one_fails(
    pool: Callable[[], ConnectionPool[Any]], fresh_s: float = FRESH_S
) -> Check:
    """The check to give `pool()` (a callable: the pool may not exist yet)."""
    handed_out: WeakKeyDictionary[Any, float] = WeakKeyDictionary()

    def check(conn: Any) -> None:
        now = time.monotonic()
        last = handed_out.get(conn)
        if last is not None and now - last < fresh_s and not conn.broken:
            handed_out[conn] = now
            return
        try:
            ConnectionPool.check_connection(conn)
        except Exception:
            pool().check()  # the idle ones, synchronously; `conn` is discarded by the caller
            raise
        handed_out[conn] = now

    return check


class _MostRecentFirst(deque[Any]):
    """psycopg_pool takes idle connections from the left and returns them on the right;
    returned on the left instead, the one used last is the next handed out."""

    def append(self, conn: Any) -> None:
        self.appendleft(conn)


def most_recent_first(pool: ConnectionPool[Any]) -> None:
    """Makes `pool` hand out the connection returned last (psycopg_pool has no option for
    it: its idle connections are a deque it only appends to, pops from the left and
    copies; tests/integration/test_pool_order.py holds the pinned version to that)."""
    with pool._lock:
        pool._pool = _MostRecentFirst(pool._pool)


def install(pool: ConnectionPool[Any]) -> None:
    """For a pool built by a library: psycopg_pool takes its check at construction only."""
    pool._check = check_all_when_one_fails(lambda: pool)
    if isinstance(pool, ConnectionPool):  # not the library's SQLite pool
        most_recent_first(pool)
