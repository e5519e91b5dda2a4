"""PostgreSQL positions have holes (a rolled-back append draws sequence numbers); the read
side must follow the log across them, never wait for a position that will not come."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from commands.ports import CommandContext
from domain.inventory import InventoryItem
from infra.bootstrap import ReadSide, WriteSide, read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.feed import LogFeed
from read_api.app import create_app
from schemas.auth import Role
from schemas.commands import RegisterItem

pytestmark = pytest.mark.postgres


def test_projections_and_min_position_reads_cross_a_hole_in_the_positions(
    postgres_settings: Settings, tmp_path: object
) -> None:
    side: WriteSide = write_side(postgres_settings)
    reads: ReadSide = read_side(postgres_settings)
    context = CommandContext(correlation_id="holes", actor="test")
    try:
        side.bus.handle(RegisterItem(sku="A", name="a", unit_price_cents=1), context)
        with pytest.raises(Exception, match="duplicate key"):  # a conflicting version 1
            side.app.save(InventoryItem(sku="A", name="again", unit_price_cents=1))
        after_hole = side.bus.handle(RegisterItem(sku="B", name="b", unit_price_cents=1), context)

        positions = [n.id for n in side.app.recorder.select_notifications(start=1, limit=10)]
        assert positions == [1, 3], "the conflict should have left a hole at 2"

        LogFeed(EventLog(side.app), reads.runner).catch_up()
        assert set(reads.runner.positions().values()) == {3}
        from infra.http.auth import mint_token

        token = mint_token(postgres_settings.token_secret, "t", Role.ADMIN, 60)
        with TestClient(create_app(reads)) as client:
            response = client.get(
                "/inventory/B",
                params={"min_position": after_hole.position, "wait_ms": 500},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200
    finally:
        side.close()
        reads.close()
