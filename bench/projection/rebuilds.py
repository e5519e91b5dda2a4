"""Rebuilding the read models from the event store, the bare scan they are compared with,
and the digests that compare two builds."""

from __future__ import annotations

import multiprocessing
import resource
import time
from typing import Any

import psycopg

from bench.projection.shop import EVENTS_TABLE
from bench.projection.stages import STAGE_TIMEOUT_S
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import OrderFlowApplication, open_event_store
from infra.readstore.store import PostgresReadStore
from infra.settings import Settings
from projections.collector import collection_paused
from projections.ports import ReadStore
from projections.rebuild import rebuild_all
from projections.registry import SQL_READ_MODELS

SCAN_BATCH = 2_000  # rebuild reads the log 2000 at a time; the raw scan fetches as many


def read_log(app: OrderFlowApplication) -> int:
    """The rebuild's input alone: the whole log as envelopes, applied to nothing, read as
    `rebuild_all` reads it (with the cyclic collector paused for the pass)."""
    with collection_paused():
        return sum(len(batch) for batch in EventLog(app).scan(0, batch=SCAN_BATCH))


def raw_scan(dsn: str) -> int:
    rows = 0
    with psycopg.connect(dsn) as conn, conn.cursor(name="bench_scan") as cursor:
        cursor.itersize = SCAN_BATCH
        cursor.execute(f"SELECT * FROM {EVENTS_TABLE} ORDER BY notification_id")
        while batch := cursor.fetchmany(SCAN_BATCH):
            rows += len(batch)
    return rows


def _rebuild_all_process(settings: Settings, out: Any) -> None:
    app = open_event_store(settings)
    store = PostgresReadStore(settings.read_database_url or "", settings.postgres_pool_size)
    began = time.perf_counter()
    reports = rebuild_all(SQL_READ_MODELS, store, EventLog(app), batch=SCAN_BATCH)
    seconds = time.perf_counter() - began
    # KiB on Linux; the fold's helper process (projections/split_fold.py), ended by now, is
    # a child: both peaks added, an upper bound of the two processes' peak together
    peak_kib = sum(
        resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    out.put((reports[0].events, seconds, peak_kib * 1024))
    store.close()
    app.close()


def rebuild_all_in_child(settings: Settings) -> tuple[int, float, int]:
    """(events, seconds, peak RSS in bytes) of `rebuild_all` in a fresh process: its peak
    (with its helper's) is the rebuild's own, not the event-store filler's."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    child = spawn.Process(target=_rebuild_all_process, args=(settings, out))
    child.start()
    found: tuple[int, float, int] = out.get(timeout=STAGE_TIMEOUT_S * 4)
    child.join(timeout=60)
    return found


def read_model_bytes(store: ReadStore) -> int:
    """The read models' own size on disk (tables and indexes)."""
    names = [t.name for p in SQL_READ_MODELS for t in p.tables]
    with store.read() as tx:
        row = tx.one(
            "SELECT sum(pg_total_relation_size(c.oid)) AS n FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'r'",
            (names,),
        )
    return int(row["n"]) if row and row["n"] is not None else 0


def table_digests(store: ReadStore) -> dict[str, str]:
    """Row count and a digest of every read-model table, to compare two builds."""
    digests = {}
    with store.read() as tx:
        for projection in SQL_READ_MODELS:
            for table in projection.tables:
                row = tx.one(
                    f"SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS d "
                    f"FROM {table.name} t"
                )
                assert row is not None
                digests[table.name] = f"{row['n']}:{row['d']}"
    return digests
