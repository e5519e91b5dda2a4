"""TEST ONLY: ClickHouse's HTTP interface on top of chDB, so clickhouse-connect's HTTP path
runs against the real ClickHouse engine where no modern ClickHouse server can be installed.

It serves what the client sends, no more: statements in the body or the `query` parameter
(or multipart form fields, for long bind parameters), `database`, `param_*` bind
parameters, settings as URL parameters, compressed request bodies, and
`INSERT … FORMAT <fmt>` with the data after the statement. Answers carry the headers the
client reads: X-ClickHouse-Format (when rows come back), -Timezone, -Summary, -Query-Id,
and, for errors, a non-2xx status (never 429/503/504, which the client retries) with
X-ClickHouse-Exception-Code and a `Code: N. DB::Exception: …` body. The client's
protocol probe (`client_protocol_version`) is ignored, so it settles on protocol 0, as it
does with chDB in process.

chDB hosts one engine per process, so the server runs in the tests' own process, on
threads, sharing the engine (and its data directory) with them; each request opens its
own connection handle, so `USE` and `SET` never leak from one request to the next."""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame  # type: ignore[import-untyped]
from backports import zstd

# URL parameters the HTTP layer consumes; anything else that is not param_* is a setting
TRANSPORT = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "user",
        "password",
        "quota_key",
        "role",
    }
)
INSERT = re.compile(rb"\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+(\w+)[^\S\n]*(?:\n|$)", re.S | re.I)
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ERROR_CODE = re.compile(r"Code: (\d+)\.")
STATUS_BY_CODE = {62: 400, 60: 404, 81: 404, 115: 400, 516: 401}  # else 500
connect = cast(Callable[[str], Any], chdb.connect)  # one handle on the process's engine
DECOMPRESS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "lz4": lz4.frame.decompress,
    "zstd": zstd.decompress,
}


class ClickHouseError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        found = ERROR_CODE.search(message)
        self.code = int(found.group(1)) if found else 1002  # UNKNOWN_EXCEPTION


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    chdb_path: str
    timezone: str
    connections: set[socket.socket]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection's thread gives up after this

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if urlsplit(self.path).path.rstrip("/") == "/ping":
            self._answer(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._body())

    # -- request --------------------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
            raw = bytes(body)
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        return raw if encoding == "identity" else DECOMPRESS[encoding](raw)

    def _params(self, body: bytes) -> tuple[dict[str, str], bytes]:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            head = f"Content-Type: {content_type}\r\n\r\n".encode()
            form = BytesParser(policy=HTTP).parsebytes(head + body)
            for part in form.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    params[name] = payload.decode()
            body = b""
        return params, body

    def _handle(self, body: bytes) -> None:
        started = time.monotonic()
        query_id = str(uuid.uuid4())
        try:
            params, body = self._params(body)
            answer, fmt, summary = self._execute(params, body)
        except ClickHouseError as failure:
            message = str(failure)
            if not message.startswith("Code:"):
                message = f"Code: {failure.code}. DB::Exception: {message}"
            self._answer(
                STATUS_BY_CODE.get(failure.code, 500),
                f"{message} (version chdb)\n".encode(),
                {
                    "Content-Type": "text/plain; charset=UTF-8",
                    "X-ClickHouse-Exception-Code": str(failure.code),
                    "X-ClickHouse-Query-Id": query_id,
                },
            )
            return
        summary["elapsed_ns"] = str(int((time.monotonic() - started) * 1e9))
        headers = {
            "Content-Type": "application/octet-stream"
            if fmt in ("Native", "RowBinary")
            else "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.timezone,
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        if answer:
            headers["X-ClickHouse-Format"] = fmt
        self._answer(200, answer, headers)

    def _execute(self, params: dict[str, str], body: bytes) -> tuple[bytes, str, dict[str, str]]:
        binds = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")
        }
        statement = params.get("query", "").encode()
        text = statement + (b"\n" + body if statement and body else body)
        insert = INSERT.match(text)
        try:
            conn = connect(self.server.chdb_path)
        except RuntimeError as failure:
            raise ClickHouseError(str(failure)) from failure
        try:
            if params.get("database"):
                _run(conn, f"USE `{params['database']}`", "TabSeparated")
            for name, value in settings.items():
                if not SETTING_NAME.match(name):
                    raise ClickHouseError(f"Code: 115. DB::Exception: Unknown setting {name}")
                quoted = value.replace("\\", "\\\\").replace("'", "\\'")
                _run(conn, f"SET {name} = '{quoted}'", "TabSeparated")
            if insert:
                return b"", "", _insert(conn, insert, text[insert.end() :])
            sql = text.decode()
            found = TRAILING_FORMAT.search(sql)
            fmt = found.group(1) if found else params.get("default_format", "TabSeparated")
            result = _run(conn, sql, fmt, binds)
            answer = bytes(result.bytes() or b"")
            return answer, fmt, _summary(result)
        finally:
            conn.close()

    # -- response -------------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _run(conn: Any, sql: str, fmt: str, binds: dict[str, str] | None = None) -> Any:
    try:
        return conn.query(sql, fmt, params=binds or {})
    except RuntimeError as failure:  # chdb's ChdbError
        raise ClickHouseError(str(failure)) from failure


def _insert(conn: Any, statement: re.Match[bytes], data: bytes) -> dict[str, str]:
    try:
        with conn.send_insert(statement.group(1).decode(), statement.group(2).decode()) as rows:
            if data:
                rows.append(data)
            done = rows.finish()
    except RuntimeError as failure:
        raise ClickHouseError(str(failure)) from failure
    return {
        "read_rows": "0",
        "read_bytes": "0",
        "written_rows": str(done.rows_written),
        "written_bytes": str(done.bytes_written),
    }


def _summary(result: Any) -> dict[str, str]:
    return {
        "read_rows": str(result.rows_read()),
        "read_bytes": str(result.bytes_read()),
        "written_rows": "0",
        "written_bytes": "0",
    }


class ClickHouseHTTP:
    """The server on a free loopback port; `url` once started."""

    def __init__(self, chdb_path: str) -> None:
        self.chdb_path = chdb_path
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.chdb_path = self.chdb_path
        server.connections = set()
        probe = connect(self.chdb_path)
        try:
            server.timezone = probe.query("SELECT timezone()", "TabSeparated").bytes().decode()
            server.timezone = server.timezone.strip()
        finally:
            probe.close()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="clickhouse-http", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            for connection in list(self._server.connections):  # keep-alive ones too
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=10)
