"""The read path's two HTTP servers: OrderFlow's read API, and a bare FastAPI endpoint
reading one row by its key, run the same way (bench/write/servers.py serves them)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row

from bench.write.servers import JWT_SECRET, app_with, bare_pool
from infra.bootstrap import read_side
from infra.settings import Settings
from read_api.app import create_app

ORDERFLOW = "bench.read.servers:orderflow_read_app"
BARE = "bench.read.servers:bare_read_app"
SELECT_ORDER = "SELECT * FROM orders WHERE order_id = %s"


def orderflow_read_app(dsn: str) -> FastAPI:
    return create_app(read_side(Settings(database_url=dsn, jwt_secret=JWT_SECRET)))


def bare_read_app(dsn: str) -> FastAPI:
    """One indexed SELECT per request, run like OrderFlow's reads: a sync endpoint on the
    threadpool with a psycopg pool of the same size, so the ratio isolates OrderFlow's work."""
    pool = bare_pool(dsn, autocommit=True)
    app = app_with(pool)

    @app.get("/rows/{order_id}")
    def read_row(order_id: str) -> JSONResponse:
        with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(SELECT_ORDER, (order_id,)).fetchone()
        if row is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse({k: str(v) for k, v in row.items()})

    return app
