"""The oracle (tests/oracle.py) covers every event type: after one of each, the read models
match the aggregates field by field; a row edited by hand is named with its field, one
deleted by its key."""

from __future__ import annotations

from infra.bootstrap import ReadSide, WriteSide
from projections.feed import LogFeed
from tests.oracle import assert_read_models_match_aggregates, differences, expected_read_models
from tests.scenarios import save_every_event_type


def test_every_event_type_matches_the_aggregates_and_an_edit_is_named(
    side: WriteSide, reads: ReadSide, feed: LogFeed
) -> None:
    shipped, cancelled, *_ = save_every_event_type(side.app)
    feed.catch_up()
    assert_read_models_match_aggregates(reads.store, side.app)

    with reads.store.transaction() as tx:
        tx.execute("UPDATE orders SET carrier = 'UPS' WHERE order_id = %s", (str(shipped.id),))
        tx.execute("DELETE FROM inventory_levels WHERE sku = 'A'")
    expected = expected_read_models(side.app)
    assert differences(reads.store, expected) == [
        f"orders['{shipped.id}'].carrier: read model 'UPS', aggregates 'DHL'",
        "inventory_levels['A']: missing from the read model",
    ]
    assert expected["reservation_deadlines"] == {}  # none is left reserved
    assert {row["status"] for row in expected["orders"].values()} == {
        "delivered",
        "cancelled",
        "expired",
        "failed",
    }
    assert expected["orders"][(str(cancelled.id),)]["refund_due"] is False
