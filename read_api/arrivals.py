"""Waiting for an order to reach the read models (`Prefer: wait=N` on `GET /orders/{id}`).

A client that placed an order and wants to see it would otherwise poll: each poll one HTTP
request and one statement, most of them answered 404. Here the requests that wait are
checked together: one statement each tick asks which of every waited-for order are in the
read model now, whatever the number of waiting requests, and each request wakes when its
order is there (ADR 0029)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import anyio

from projections import queries
from projections.ports import ReadStore

TICK_S = 0.005
# Waiting requests per process: past this a request answers at once, as without the
# preference: each waits on a connection and a coroutine, and a flood of them must not
# grow without bound.
MOST_WAITING = 10_000
MOST_WAIT_S = 10  # the same bound as wait_ms


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


class Arrivals:
    """The orders requests are waiting for in one process, and the one task that checks
    them while any are waited for."""

    def __init__(self, store: ReadStore, tick_s: float = TICK_S) -> None:
        self._store = store
        self._tick_s = tick_s
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(len(futures) for futures in self._waiting.values())

    async def wait(self, order_id: str, seconds: float) -> bool:
        """Until the order is in the read model (True) or `seconds` pass (False). A read
        store that fails while it is checked raises here, as the read would have."""
        if self.waiting >= MOST_WAITING:
            return False
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(order_id, []).append(arrived)
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._check_while_waited())
        try:
            await asyncio.wait_for(arrived, seconds)
            return True
        except TimeoutError:
            return False
        finally:
            self._forget(order_id, arrived)

    def _forget(self, order_id: str, arrived: asyncio.Future[None]) -> None:
        futures = self._waiting.get(order_id, [])
        if arrived in futures:
            futures.remove(arrived)
        if not futures:
            self._waiting.pop(order_id, None)

    async def _check_while_waited(self) -> None:
        while self._waiting:
            wanted = list(self._waiting)
            try:
                present = await anyio.to_thread.run_sync(self._present, wanted)
            except Exception as failure:  # every waiter answers as its own read would
                for arrived in self._take(wanted):
                    arrived.set_exception(failure)
            else:
                for arrived in self._take(present):
                    arrived.set_result(None)
            await asyncio.sleep(self._tick_s)

    def _take(self, order_ids: Iterable[str]) -> list[asyncio.Future[None]]:
        """The pending waits for these orders, no longer waiting."""
        taken = [f for order_id in order_ids for f in self._waiting.pop(order_id, [])]
        return [arrived for arrived in taken if not arrived.done()]

    def _present(self, order_ids: list[str]) -> set[str]:
        with self._store.read() as tx:
            return queries.present_orders(tx, order_ids)
