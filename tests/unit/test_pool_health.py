"""The pool's checkout check pings only connections that may have gone stale."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from infra import pool_health


@dataclass(eq=False)
class Conn:
    broken: bool = False
    alive: bool = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def pinged(monkeypatch: pytest.MonkeyPatch) -> list[Conn]:
    pings: list[Conn] = []

    def ping(conn: Conn) -> None:
        pings.append(conn)
        if not conn.alive:
            raise OSError("server closed the connection")

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(ping))
    return pings


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("infra.pool_health.time", SimpleNamespace(monotonic=clock.monotonic))
    return clock


class Pool:
    def __init__(self) -> None:
        self.checked_all = 0

    def check(self) -> None:
        self.checked_all += 1


def checker(pool: Pool) -> Any:
    return pool_health.check_all_when_one_fails(lambda: pool, fresh_s=1.0)  # type: ignore[arg-type,return-value]


def test_a_connection_handed_out_a_moment_ago_is_not_pinged(
    pinged: list[Conn], clock: Clock
) -> None:
    check, conn = checker(Pool()), Conn()
    check(conn)  # never seen: pinged
    clock.now += 0.5
    check(conn)
    clock.now += 0.9  # 0.9 s after the last hand-out: still fresh
    check(conn)
    assert pinged == [conn]


def test_a_connection_idle_a_while_or_broken_is_pinged(pinged: list[Conn], clock: Clock) -> None:
    check, idle, broken = checker(Pool()), Conn(), Conn()
    check(idle)
    check(broken)
    clock.now += 0.1
    broken.broken = True  # psycopg saw it fail while it was handed out
    check(broken)
    clock.now += 1.5
    check(idle)
    assert pinged == [idle, broken, broken, idle]


def test_a_dead_connection_makes_the_pool_check_every_idle_one(
    pinged: list[Conn], clock: Clock
) -> None:
    pool, conn = Pool(), Conn()
    check = checker(pool)
    check(conn)
    clock.now += 5
    conn.alive = False
    with pytest.raises(OSError, match="closed"):
        check(conn)
    assert pool.checked_all == 1
    clock.now += 0.1  # a failed check does not count as a hand-out: pinged again
    with pytest.raises(OSError, match="closed"):
        check(conn)
    assert pinged == [conn, conn, conn]
