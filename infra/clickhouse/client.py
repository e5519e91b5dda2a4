"""ClickHouse clients for the reporting read models: one factory, two transports.

Production talks to a ClickHouse server over HTTP (`ORDERFLOW_CLICKHOUSE_URL`); embedded
mode runs the same engine in this process through chDB, behind the same clickhouse-connect
client, so every statement and call is the same in both modes.

chDB hosts one engine per process and locks its data directory, so only one process may
open a directory at a time; clients opened in one process share the engine. Open it after
any fork, never before (a forked child would inherit an engine it cannot use)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from infra.settings import Settings
from projections.ports import StoreUnavailable

DEFAULT_DATABASE = "orderflow"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ReportingUnavailable(StoreUnavailable):
    """The reporting store cannot be opened (chDB directory locked, server unreachable)."""


def identifier(name: str) -> str:
    """A database or table name we put into SQL: plain identifiers only."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def reporting_client(settings: Settings, database: str | None = None) -> Client:
    """A new client on the configured reporting store, in its database (created if missing):
    the server at `clickhouse_url`, else chDB under the data dir."""
    if settings.clickhouse_url:
        return connect_server(settings.clickhouse_url, database)
    return connect_chdb(settings.chdb_dir, database)


def connect_server(url: str, database: str | None = None) -> Client:
    """`http[s]://user:password@host:port/database`; the path names the database
    (default `orderflow`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"ORDERFLOW_CLICKHOUSE_URL must be http(s)://…, not {parts.scheme}://")
    chosen = database or unquote(parts.path.strip("/")) or DEFAULT_DATABASE
    server = urlunsplit(parts._replace(path=""))
    try:
        # no session: one client serves concurrent request threads, and a session would
        # make the server refuse a second query while the first one runs
        client = clickhouse_connect.get_client(dsn=server, autogenerate_session_id=False)
    except Exception as down:
        raise ReportingUnavailable(f"ClickHouse at {parts.hostname}:{parts.port}: {down}") from down
    return _in_database(client, chosen)


def connect_chdb(directory: Path, database: str | None = None) -> Client:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        client = clickhouse_connect.get_client(dsn=f"chdb://{directory.resolve()}")
    except ProgrammingError as locked:
        raise ReportingUnavailable(
            f"chDB data in {directory} is in use by another process (one process per "
            f"directory: is `orderflow dev` running on it?): {locked}"
        ) from locked
    return _in_database(client, database or DEFAULT_DATABASE)


def _in_database(client: Client, database: str) -> Client:
    # Atomic (the default engine) is what EXCHANGE TABLES needs
    client.command(f"CREATE DATABASE IF NOT EXISTS {identifier(database)}")
    client.database = database
    return client
