"""The bench's PostgreSQL: the baseline's table, the durable settings, what was in force."""

from __future__ import annotations

import time

import psycopg

from tests.harness.postgres import PostgresServer

ROWS_TABLE = "bench_rows"
ROWS_DDL = f"CREATE TABLE {ROWS_TABLE} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)"
DURABLE_SETTINGS = ("fsync", "synchronous_commit", "full_page_writes")


def make_durable(pg: PostgresServer) -> None:
    """The harness runs without fsync for speed; --durable turns it all back on."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for setting in DURABLE_SETTINGS:
            conn.execute(f"ALTER SYSTEM SET {setting} = on")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while server_settings(pg)["fsync"] != "on":
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not take the durable settings")
        time.sleep(0.1)


def server_settings(pg: PostgresServer) -> dict[str, str]:
    names = ("server_version", *DURABLE_SETTINGS, "shared_buffers", "max_connections")
    with psycopg.connect(pg.dsn()) as conn:
        rows = {name: conn.execute(f"SHOW {name}").fetchone() for name in names}
    return {name: str(row[0]) for name, row in rows.items() if row is not None}


def create_rows_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROWS_DDL)
