"""Rebuild the reporting projection from the event store into shadow tables, then swap.

As for the SQL projections (`projections/rebuild.py`): the live tables keep serving, and a
live projector keeps applying to them, until the swap; the event store, not Kafka, is the
source. ClickHouse has no transaction to hold the live projector off during the swap, so:

1. the shadow tables (`<table>__rebuild`, their own progress included) are filled from the
   whole log, then caught up once more with what arrived meanwhile;
2. `EXCHANGE TABLES` swaps each live table with its shadow, atomically per table, the
   facts first and the progress last: for a moment a reader may see the new facts beside
   the old watermark, which is harmless as long as the shadow is ahead of the live
   projector, which the catch-up just made it (the log is ahead of Kafka);
3. a live projector's batch that straddled the swap may have written some rows into a
   table now retired, and its progress into the new one. So every event after the
   position the shadow had reached is applied once more to the new live tables (rows are
   idempotent, so this is always safe), which also carries the watermark over them;
4. the retired tables, now under the shadow names, are dropped.

Between 2 and 3 the watermark may step back by the few events that arrived during the
swap; step 3 brings it forward again within one batch."""

from __future__ import annotations

from projections.ports import EventSource
from projections.projector import SHADOW, Progress, RebuildReport
from projections.reporting import NAME
from projections.reporting_projector import ReportingProjector


def rebuild_reporting(
    live: ReportingProjector,
    events: EventSource,
    progress: Progress | None = None,
    batch: int = 2000,
) -> RebuildReport:
    live.setup()  # the live tables exist before a first rebuild too: EXCHANGE needs both
    shadow = ReportingProjector(live.client, suffix=SHADOW, projection=live.projection)
    shadow.drop()  # a rebuild that died half way left them
    shadow.setup()

    reached, read = 0, 0
    for envelopes in events.iterate(0, batch=batch):
        shadow.apply(envelopes)
        reached, read = envelopes[-1].position, read + len(envelopes)
        if progress:
            progress(reached, events.head())
    for envelopes in events.iterate(reached, batch=batch):  # what came in meanwhile
        shadow.apply(envelopes)
        reached, read = envelopes[-1].position, read + len(envelopes)

    for name in live.physical:  # facts first, progress last; one pair per statement (any version)
        live.client.command(f"EXCHANGE TABLES {live.physical[name]} AND {shadow.physical[name]}")

    for envelopes in events.iterate(reached, batch=batch):  # straddlers, see above
        live.apply(envelopes, force=True)
        reached, read = envelopes[-1].position, read + len(envelopes)
    shadow.drop()
    if progress:
        progress(reached, reached)
    return RebuildReport(NAME, live.position(), read)
