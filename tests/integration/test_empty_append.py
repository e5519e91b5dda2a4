"""An append of no events, with an idempotent answer: nothing to append, so nothing is
recorded, on SQLite and on PostgreSQL."""

from __future__ import annotations

from commands.ports import Answer, IdempotencyClaim, IdempotentAnswer
from infra.bootstrap import WriteSide


def test_no_events_with_an_answer_appends_and_records_nothing(side: WriteSide) -> None:
    recorder = side.app.orderflow_recorder
    head = recorder.max_notification_id()
    answer = IdempotentAnswer(
        IdempotencyClaim("alice", "empty-1", "f" * 64), Answer(200, {"ok": True})
    )

    ids = recorder.insert_events([], idempotency=answer)

    assert not ids
    assert recorder.max_notification_id() == head
    assert recorder.find_answer("alice", "empty-1") is None
    assert recorder.chain_rows(after=0, limit=10) == []
