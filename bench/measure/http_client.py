"""A bare HTTP/1.1 keep-alive client for the benches' load, and a pool of them.

A full client (httpx2) spent about 1.5 ms of CPU per request here, as much as the bare
server it measured; this one spends about 0.15 ms, so on two cores the load generator
does not starve the servers under test. It speaks only what the benches need: requests
with a body or none, answers with a Content-Length."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        head = [
            f"{method} {path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(body)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self._writer.write("\r\n".join([*head, "", ""]).encode("latin-1") + body)
        status_line, *lines = (
            (await self._reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        )
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        if "content-length" not in fields:
            raise RuntimeError(f"answer without Content-Length: {status_line} {fields}")
        answer = await self._reader.readexactly(int(fields["content-length"]))
        return Answer(int(status_line.split()[1]), answer)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # the server may have closed it first
            await self._writer.wait_closed()


class Pool:
    """Keep-alive connections to one port, opened as concurrency asks, reused after. One
    idle for IDLE_S or longer is closed instead: uvicorn closes a connection idle for 5 s
    (its keep-alive timeout), and a request written into one it is closing reads nothing."""

    IDLE_S = 2.0

    def __init__(self, port: int) -> None:
        self._port = port
        self._idle: list[tuple[Connection, float]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        connection = None
        while self._idle and connection is None:
            candidate, since = self._idle.pop()
            if time.monotonic() - since < self.IDLE_S:
                connection = candidate
            else:
                await candidate.close()
        if connection is None:
            connection = await Connection.open(self._port)
        yield connection  # not given back if the request failed part way: it may be torn
        self._idle.append((connection, time.monotonic()))

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        async with self.connection() as connection:
            return await connection.request(method, path, headers, body)

    async def close(self) -> None:
        while self._idle:
            connection, _ = self._idle.pop()
            await connection.close()
