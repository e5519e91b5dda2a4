"""Everything a store holds, as bytes, to search for clear text: the SQLite files, or
every row of every PostgreSQL table as text (bytea as hex)."""

from __future__ import annotations

import psycopg

from infra.settings import Settings


def stored_bytes(settings: Settings) -> bytes:
    if settings.database_url is None:
        files = [
            settings.sqlite_path,
            settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal"),
        ]
        return b"".join(f.read_bytes() for f in files if f.exists())
    with psycopg.connect(settings.database_url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
        text = [
            str(row[0])
            for table in tables
            for row in connection.execute(f'SELECT t::text FROM "{table}" t')
        ]
    return "\n".join(text).encode()


def holds(blob: bytes, clear: str) -> bool:
    """The clear text as UTF-8, or as PostgreSQL's hex text of a bytea holding it."""
    return clear.encode() in blob or clear.encode().hex().encode() in blob
