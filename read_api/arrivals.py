"""Waiting for an order to reach the read models (`Prefer: wait=N` on `GET /orders/{id}`).

A client that placed an order and wants to see it would otherwise poll: each poll one HTTP
request and one statement, most of them answered 404. Here the requests that wait are
served together: one statement each tick reads every waited-for order that is in the read
model now, whatever the number of waiting requests, and hands each request its own
(ADR 0029)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import anyio

TICK_S = 0.005
# Orders waited for per process: past this a request answers at once, as without the
# preference: each wait holds a connection and a coroutine, and a flood of them must not
# grow without bound.
MOST_WAITING = 10_000
MOST_WAIT_S = 10  # the same bound as wait_ms

Found = TypeVar("Found")


def wait_preference(values: Iterable[str]) -> int | None:
    """The seconds of a `Prefer: wait=N` (RFC 7240), at most MOST_WAIT_S; None when the
    request states none. A preference the server cannot read is ignored, as the RFC asks."""
    for value in values:
        for preference in value.split(","):
            name, _, rest = preference.split(";")[0].partition("=")
            if name.strip().lower() != "wait":
                continue
            seconds = rest.strip().strip('"')
            if seconds.isdigit():
                return min(int(seconds), MOST_WAIT_S)
    return None


class Arrivals(Generic[Found]):
    """What requests are waiting for in one process, and the one task that looks for it
    while anything is waited for. `look` runs in a worker thread: given keys, it answers
    what it found of them, by key."""

    def __init__(
        self, look: Callable[[list[str]], dict[str, Found]], tick_s: float = TICK_S
    ) -> None:
        self._look = look
        self._tick_s = tick_s
        self._waiting: dict[str, list[asyncio.Future[Found]]] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiting.values())

    @property
    def full(self) -> bool:
        """No more may wait: a request reads at once instead. Counted in orders waited
        for (requests for one order share its look), so that asking costs nothing."""
        return len(self._waiting) >= MOST_WAITING

    async def wait(self, key: str, seconds: float) -> Found | None:
        """What `look` found for `key`, once it does (on the next tick when it is there
        already), or None after `seconds`, or at once when `full`. A look that fails (the
        read store down) raises here, as the request's own read would have."""
        if self.full:
            return None
        arrived: asyncio.Future[Found] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(arrived)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._look_while_waited())
        try:
            return await asyncio.wait_for(arrived, seconds)
        except TimeoutError:
            return None
        finally:
            self._forget(key, arrived)

    def _forget(self, key: str, arrived: asyncio.Future[Found]) -> None:
        futures = self._waiting.get(key, [])
        if arrived in futures:
            futures.remove(arrived)
        if not futures:
            self._waiting.pop(key, None)

    async def _look_while_waited(self) -> None:
        while self._waiting:
            wanted = list(self._waiting)
            try:
                found = await anyio.to_thread.run_sync(self._look, wanted)
            except Exception as failure:  # every waiter answers as its own read would
                for arrived in self._take(wanted):
                    arrived.set_exception(failure)
            else:
                for key, value in found.items():
                    for arrived in self._take([key]):
                        arrived.set_result(value)
            await asyncio.sleep(self._tick_s)

    def _take(self, keys: Iterable[str]) -> list[asyncio.Future[Found]]:
        """The pending waits for these keys, no longer waiting."""
        taken = [f for key in keys for f in self._waiting.pop(key, [])]
        return [arrived for arrived in taken if not arrived.done()]
