"""Holes in the event log, made as a rolled-back append makes them."""

from __future__ import annotations

from infra.eventstore.event_store import OrderFlowApplication
from infra.eventstore.postgres_recorder import PostgresRecorder


def burn(app: OrderFlowApplication, positions: int) -> None:
    """Positions drawn and never used, as by an append that rolled back: holes in the log."""
    recorder = app.recorder
    assert isinstance(recorder, PostgresRecorder)
    with recorder.datastore.get_connection() as conn:
        for _ in range(positions):
            conn.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id'))",
                (recorder.events_table_name,),
            )
