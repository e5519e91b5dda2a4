"""The audit endpoints (docs/api.md), on embedded SQLite and on real PostgreSQL: histories and
the global log round-trip every event type; past states; the chain catches tampering."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commands.ports import CommandContext
from domain.order import Order
from infra.bootstrap import WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from read_api.app import create_app
from schemas.auth import Role
from schemas.commands import RegisterItem
from schemas.events import PAYLOADS
from tests.api.test_write_api import is_problem
from tests.scenarios import save_every_event_type

Auth = Callable[..., dict[str, str]]


@pytest.fixture
def history(side: WriteSide) -> list[Order]:
    return save_every_event_type(side.app, pause_s=0.05)


def get(client: TestClient, auth: Auth, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=auth(Role.AUDITOR))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_global_log_pages_through_every_event_with_positions_and_versions(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    expected = [e.model_dump(mode="json") for b in EventLog(side.app).iterate(0) for e in b]
    seen: list[dict[str, Any]] = []
    after = 0
    while page := get(read_client, auth, "/audit/events", after_position=after, limit=7)["items"]:
        seen += page
        after = page[-1]["position"]
    assert seen == expected
    assert {e["type"] for e in seen} == set(PAYLOADS)
    assert [e["position"] for e in seen] == sorted(e["position"] for e in seen)


def test_the_global_log_filters_by_aggregate_type_and_time(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    shipped = history[0]
    mine = get(read_client, auth, "/audit/events", aggregate_id=str(shipped.id))["items"]
    assert [e["version"] for e in mine] == list(range(1, shipped.version + 1))
    paid = get(read_client, auth, "/audit/events", type=["order.paid", "order.expired"])["items"]
    assert sorted(e["type"] for e in paid) == ["order.expired", "order.paid", "order.paid"]
    earlier = get(read_client, auth, "/audit/events", limit=1000)["items"]
    time.sleep(0.01)  # recording times have millisecond precision on SQLite
    cut = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    side.bus.handle(
        RegisterItem(sku="CUT-1", name="after the cut", unit_price_cents=1),
        CommandContext("audit-test", "auditor-test"),
    )
    everything = get(read_client, auth, "/audit/events", limit=1000)["items"]
    before = get(read_client, auth, "/audit/events", limit=1000, until=cut)["items"]
    after = get(read_client, auth, "/audit/events", limit=1000, since=cut)["items"]
    assert before == earlier  # recorded before the cut: everything the history saved
    assert [e["type"] for e in after] == ["inventory.item_registered"]  # by hand: one event
    assert before + after == everything


def test_an_unknown_event_type_is_422(read_client: TestClient, auth: Auth) -> None:
    is_problem(
        read_client.get(
            "/audit/events", params={"type": "order.teleported"}, headers=auth(Role.AUDITOR)
        ),
        422,
        "unknown-event-type",
    )


def test_histories_come_in_version_order(
    read_client: TestClient, auth: Auth, history: list[Order]
) -> None:
    order = get(read_client, auth, f"/audit/orders/{history[0].id}/history")["items"]
    assert [e["type"] for e in order] == [
        "order.created",
        "order.reserved",
        "order.payment_failed",
        "order.paid",
        "order.shipped",
        "order.delivered",
    ]
    assert [e["version"] for e in order] == [1, 2, 3, 4, 5, 6]
    item = get(read_client, auth, "/audit/inventory/A/history")["items"]
    assert [e["version"] for e in item] == list(range(1, len(item) + 1))
    assert item[0]["data"] == {"sku": "A", "name": "a", "unit_price_cents": 100}


def test_state_as_of_a_time_between_two_events_is_the_state_after_the_earlier(
    read_client: TestClient, auth: Auth, history: list[Order]
) -> None:
    order_id = history[0].id
    events = get(read_client, auth, f"/audit/orders/{order_id}/history")["items"]
    reserved, paid = events[1], events[3]
    between = (
        datetime.fromisoformat(reserved["occurred_at"])
        + (
            datetime.fromisoformat(events[2]["occurred_at"])
            - datetime.fromisoformat(reserved["occurred_at"])
        )
        / 2
    )
    state = get(read_client, auth, f"/audit/orders/{order_id}/state", as_of=between.isoformat())
    assert (state["status"], state["version"]) == ("reserved", 2)
    at_paid = get(read_client, auth, f"/audit/orders/{order_id}/state", as_of=paid["occurred_at"])
    assert (at_paid["status"], at_paid["version"], at_paid["payment_ref"]) == ("paid", 4, "p1")
    by_version = get(read_client, auth, f"/audit/orders/{order_id}/state", version=2)
    assert by_version == state
    before_it = read_client.get(
        f"/audit/orders/{order_id}/state",
        params={"as_of": "2000-01-01T00:00:00Z"},
        headers=auth(Role.AUDITOR),
    )
    is_problem(before_it, 404, "not-yet-existing")


@pytest.fixture
def snapshotting(settings: Settings) -> Iterator[tuple[WriteSide, TestClient]]:
    """The same store, opened with snapshots every 2 events."""
    every_two = settings.model_copy(update={"snapshot_interval": 2})
    writes, reads = write_side(every_two), read_side(every_two)
    with TestClient(create_app(reads)) as client:
        yield writes, client
    writes.close()
    reads.close()


def test_state_as_of_is_the_same_with_snapshots(
    snapshotting: tuple[WriteSide, TestClient], auth: Auth
) -> None:
    writes, client = snapshotting
    orders = save_every_event_type(writes.app, pause_s=0.05)
    assert writes.app.snapshots is not None
    assert list(writes.app.snapshots.get(orders[0].id)), "snapshots were taken"
    events = get(client, auth, f"/audit/orders/{orders[0].id}/history")["items"]
    for event in events:
        state = get(client, auth, f"/audit/orders/{orders[0].id}/state", as_of=event["occurred_at"])
        assert state["version"] == event["version"]
        by_version = get(
            client, auth, f"/audit/orders/{orders[0].id}/state", version=event["version"]
        )
        assert by_version == state


AUDIT_PATHS = [
    "/audit/events",
    "/audit/verify",
    "/audit/inventory/A/history",
    "/audit/inventory/A/state",
]


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.OPERATOR])
def test_only_auditors_and_admins_may_audit(
    read_client: TestClient, auth: Auth, history: list[Order], role: Role
) -> None:
    order = history[0].id
    for path in [*AUDIT_PATHS, f"/audit/orders/{order}/history", f"/audit/orders/{order}/state"]:
        is_problem(read_client.get(path, headers=auth(role, "c")), 403, "forbidden")
        assert read_client.get(path, headers=auth(Role.ADMIN)).status_code == 200


def test_an_untouched_store_verifies(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    report = get(read_client, auth, "/audit/verify")
    head = EventLog(side.app).head()
    assert report == {
        "ok": True,
        "checked": head,
        "first_bad_position": None,
        "reason": None,
        "last_position": head,
        "checkpoint": None,
    }
    resumed = get(read_client, auth, "/audit/verify", after_position=head // 2)
    assert (resumed["ok"], resumed["checked"]) == (True, head - head // 2)


def _tamper(side: WriteSide, sql_by_dialect: dict[str, str], position: int) -> None:
    if side.settings.embedded:
        with side.app.recorder.datastore.transaction(commit=True) as c:  # type: ignore[attr-defined]
            c.execute(sql_by_dialect["sqlite"], (position,))
    else:
        with side.app.recorder.datastore.transaction(commit=True) as curs:  # type: ignore[attr-defined]
            curs.execute(sql_by_dialect["postgres"], (position,))


def test_an_edited_event_is_caught_at_its_position(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    victim = EventLog(side.app).head() // 2
    _tamper(
        side,
        {
            "sqlite": "UPDATE stored_events SET state = "
            "CAST(REPLACE(CAST(state AS TEXT), '1', '2') AS BLOB) WHERE rowid = ?",
            "postgres": "UPDATE orderflow_events SET state = state || '\\x20'::bytea "
            "WHERE notification_id = %s",
        },
        victim,
    )
    report = get(read_client, auth, "/audit/verify")
    assert (report["ok"], report["first_bad_position"], report["checked"]) == (
        False,
        victim,
        victim - 1,
    )


def test_a_deleted_event_is_caught_at_the_next_position(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    victim = EventLog(side.app).head() // 2
    _tamper(
        side,
        {
            "sqlite": "DELETE FROM stored_events WHERE rowid = ?",
            "postgres": "DELETE FROM orderflow_events WHERE notification_id = %s",
        },
        victim,
    )
    report = get(read_client, auth, "/audit/verify")
    assert (report["ok"], report["first_bad_position"]) == (False, victim)


def test_a_deleted_event_and_its_link_are_caught_at_the_next_position(
    read_client: TestClient, auth: Auth, side: WriteSide, history: list[Order]
) -> None:
    victim = EventLog(side.app).head() // 2
    _tamper(
        side,
        {
            "sqlite": "DELETE FROM stored_events WHERE rowid = ?",
            "postgres": "DELETE FROM orderflow_events WHERE notification_id = %s",
        },
        victim,
    )
    _tamper(
        side,
        {
            "sqlite": "DELETE FROM orderflow_audit WHERE position = ?",
            "postgres": "DELETE FROM orderflow_audit WHERE position = %s",
        },
        victim,
    )
    report = get(read_client, auth, "/audit/verify")
    assert (report["ok"], report["first_bad_position"]) == (False, victim + 1)
    assert "removed" in report["reason"]
