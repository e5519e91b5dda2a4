"""X-Projection-Position without min_position: a lower bound of what the answer's rows
reflect, read at most RECENT_POSITIONS_S before them (read_api/consistency.py)."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import ReadSide
from projections.feed import LogFeed
from projections.ports import Tx
from read_api import consistency
from read_api.consistency import RecentPositions
from schemas.auth import Role
from tests.api.test_read_api import Auth, Shop


@pytest.fixture
def shop(write_client: TestClient, auth: Auth, feed: LogFeed) -> Shop:
    return Shop(write_client, auth, feed)


def test_an_answer_never_claims_a_position_its_rows_do_not_reflect(
    shop: Shop,
    read_client: TestClient,
    auth: Auth,
    reads: ReadSide,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The projector commits while the GET runs, just before the position is read: the
    position must still be read before the rows, so an answer whose header reached the
    order's position (the oracle: the one its 201 gave) finds the order."""
    shop.item("KB")
    placed = shop.order("alice", KB=1)
    read_positions = reads.runner.positions
    projected = threading.Event()

    def positions_after_a_commit(tx: Tx | None = None) -> dict[str, int]:
        if not projected.is_set():
            projected.set()
            # another thread, as the projector is: on SQLite this one's read is open
            projector = threading.Thread(target=shop.feed.catch_up)
            projector.start()
            projector.join()
        return read_positions(tx)

    monkeypatch.setattr(reads.runner, "positions", positions_after_a_commit)
    monkeypatch.setattr(consistency, "RECENT_POSITIONS_S", 0.0)
    got = read_client.get(f"/orders/{placed['order_id']}", headers=auth(Role.ADMIN))
    assert projected.is_set()
    claimed = int(got.headers["x-projection-position"])
    assert claimed >= placed["position"]
    assert got.status_code == 200


def test_the_header_catches_up_once_the_recent_read_is_older_than_its_bound(
    shop: Shop, read_client: TestClient, auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.item("KB")
    first = shop.order("alice", KB=1)
    shop.feed.catch_up()
    path = f"/orders/{first['order_id']}"
    first_read = read_client.get(path, headers=auth(Role.ADMIN))
    assert first_read.headers["x-projection-position"] == str(first["position"])
    later = shop.order("bob", KB=1)
    shop.feed.catch_up()
    monkeypatch.setattr(consistency, "RECENT_POSITIONS_S", 0.0)
    fresh = read_client.get(path, headers=auth(Role.ADMIN))
    assert fresh.headers["x-projection-position"] == str(later["position"])


class CountingRunner:
    """Stands in for the SqlProjector: positions that rise with every read."""

    def __init__(self) -> None:
        self.reads = 0

    def positions(self, tx: object = None) -> dict[str, int]:
        self.reads += 1
        return {"orders": 10 * self.reads}


def test_positions_read_within_the_bound_are_reused_and_older_ones_read_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner, recent = CountingRunner(), RecentPositions()
    monkeypatch.setattr(consistency, "RECENT_POSITIONS_S", 60.0)
    seen = [recent.read(runner, object())["orders"] for _ in range(3)]  # type: ignore[arg-type]
    assert (seen, runner.reads) == ([10, 10, 10], 1)
    monkeypatch.setattr(consistency, "RECENT_POSITIONS_S", 0.0)
    assert recent.read(runner, object())["orders"] == 20  # type: ignore[arg-type]
    assert runner.reads == 2
