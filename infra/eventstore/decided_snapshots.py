"""The snapshots taken after a group commit's append (`save_decided`), at the intervals the
library would take them, but from the aggregate in memory where it can.

The library's way loads the aggregate at the snapshot's version (the previous snapshot and
up to an interval of events) and was a tenth of a hot SKU's commands: an inventory item
keeps one reservation per open order, so its snapshots are large (ADR 0016, session 26).
When the event at the interval is the aggregate's last of the append, the aggregate in
memory is the state at that version and is snapshotted as it is; at any other version
the library's way stays, without its protocol check per event (`group_batch.project`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from infra.eventstore.group_batch import PROJECT

if TYPE_CHECKING:
    from infra.eventstore.event_store import OrderFlowApplication

log = logging.getLogger(__name__)


def snapshot_decided(
    app: OrderFlowApplication, events: Sequence[Any], aggregates: Mapping[UUID, Any]
) -> None:
    """`events`: the append's, in order; `aggregates`: theirs, as they stand after it.
    The events are committed: a snapshot that fails is logged, never raised."""
    intervals = type(app).snapshotting_intervals
    if app.snapshots is None or not intervals:
        return
    every = {n for n in intervals.values() if n}
    for event in events:
        if all(event.originator_version % n for n in every):
            continue  # at no interval: no need to look its aggregate up (a UUID hash)
        aggregate = aggregates.get(event.originator_id)
        interval = intervals.get(type(aggregate)) if aggregate is not None else None
        if aggregate is None or not interval or event.originator_version % interval:
            continue
        if aggregate.version != event.originator_version:
            app.take_snapshot(event.originator_id, event.originator_version, PROJECT)
            continue
        snapshot_class = getattr(type(aggregate), "Snapshot", type(app).snapshot_class)
        assert snapshot_class is not None, "the domain's aggregates have a Snapshot class"
        try:
            app.snapshots.put([snapshot_class.take(aggregate)])
        except IntegrityError:
            pass  # that version has its snapshot already
        except Exception:
            log.exception("no snapshot of %s at version %s", aggregate.id, aggregate.version)
