"""The library's PostgreSQL persistence, with the URL's connection parameters kept.

`eventsourcing` builds its connection pool from host, port, database, user and password
only; `sslmode=verify-full`, `sslrootcert=…`, `application_name=…` and every other libpq
parameter in ORDERFLOW_DATABASE_URL's query would be silently dropped. This factory hands
them to the pool before it opens, so each connection the library makes carries them; and
its snapshot recorder takes the schema lock for its DDL, as the events' recorder does."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from eventsourcing.postgres import PostgresAggregateRecorder, PostgresFactory

from infra.schema_lock import held_for_session

CONNECTION_PARAMETERS = "POSTGRES_CONNECTION_PARAMETERS"


class LockedAggregateRecorder(PostgresAggregateRecorder):
    """The snapshots' recorder, creating its table under the one schema lock every
    OrderFlow process takes for DDL (infra/schema_lock.py), like the events' recorder."""

    def create_table(self) -> None:
        with held_for_session(self.datastore):
            super().create_table()


class OrderFlowPostgresFactory(PostgresFactory):
    aggregate_recorder_class = LockedAggregateRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        query = self.env.get(CONNECTION_PARAMETERS) or ""
        extra: dict[str, object] = dict(parse_qsl(query, keep_blank_values=False))
        # No server-side prepared statements: a pipelined append that fails part way (a
        # duplicate Idempotency-Key, say) can leave psycopg believing a statement prepared
        # that the server never kept, and the connection's next use fails with "prepared
        # statement _pg3_N does not exist". Parsing each statement costs less than that.
        extra["prepare_threshold"] = None
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # the library passes a dict, never a callable
        kwargs.update(extra)
