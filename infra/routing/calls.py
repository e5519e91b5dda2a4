"""Calls from one write process to another over a Unix socket, in the event loop: the
caller awaits the answer without a thread, and many calls share one connection.

What a call can tell its caller about a failure matters: `Unsent` means the other
process never got the request (nothing decided; the caller may decide it itself);
`Lost` means it was sent and no answer came back, so whether it was decided is unknown
and the caller must not act as if it knew."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from eventsourcing.persistence import OperationalError

from infra.routing.wire import frame, read_frame

log = logging.getLogger(__name__)


class Unsent(Exception):
    """The other process could not be reached: the request was not sent."""


class Lost(OperationalError):
    """The request was sent and its answer did not come back: a transient failure (the
    write API answers 503, like a database it cannot reach)."""


class Link:
    """One connection to one other process, opened on first use and again after it broke."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[object]] = {}
        self._ids = itertools.count()
        self._connecting = asyncio.Lock()
        self._reading: asyncio.Task[None] | None = None

    async def call(self, request: object) -> object:
        writer = await self._connected()
        request_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        try:
            writer.write(frame(request_id, request))
            await writer.drain()
        except OSError as error:
            self._waiting.pop(request_id, None)
            self._broken()
            raise Lost(f"sending to {self._path.name}: {error}") from error
        return await answer

    async def _connected(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self._writer is None:
                try:
                    reader, self._writer = await asyncio.open_unix_connection(self._path)
                except OSError as error:
                    raise Unsent(f"{self._path.name}: {error}") from error
                self._reading = asyncio.create_task(self._read(reader, self._writer))
            return self._writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_id, answer = await read_frame(reader)
                if (waiting := self._waiting.pop(request_id, None)) and not waiting.done():
                    waiting.set_result(answer)
        except (asyncio.IncompleteReadError, OSError):
            pass  # the other process went away
        finally:
            if self._writer is writer:
                self._broken()

    def _broken(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            if not answer.done():
                answer.set_exception(Lost(f"{self._path.name} closed before answering"))

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._broken()


Handle = Callable[[object], Awaitable[object]]


class Serving:
    """Answers each request arriving on a socket with what `handle` makes of it; the
    requests of one connection are handled concurrently and answered as each is done."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._running: set[asyncio.Task[None]] = set()

    async def start(self, path: Path) -> None:
        path.unlink(missing_ok=True)  # left by a process that held this slot before
        self._server = await asyncio.start_unix_server(self._connected, path)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stops listening, answers what is being decided (for up to `grace_s`), and ends
        every connection: a caller still waiting is told its answer is lost."""
        if self._server is not None:
            self._server.close()
        if self._running:
            await asyncio.wait(self._running, timeout=grace_s)
        for writer in list(self._connections):
            writer.close()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                request_id, request = await read_frame(reader)
                task = asyncio.create_task(self._answer(request_id, request, writer))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _answer(self, request_id: int, request: object, writer: asyncio.StreamWriter) -> None:
        try:
            value = await self._handle(request)
        except Exception:  # `handle` answers every outcome; this is a bug: the caller is
            log.exception("a routed request failed")  # told by the connection's end (Lost)
            writer.close()
            return
        if not writer.is_closing():
            writer.write(frame(request_id, value))


async def serve(path: Path, handle: Handle) -> Serving:
    serving = Serving(handle)
    await serving.start(path)
    return serving
