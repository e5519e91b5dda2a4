"""A long-running process's heap, once it is built, out of the cyclic collector's way.

Python's collector walks every tracked object of the oldest generation in each full
collection. An API process holds some 100,000 of them after start-up (FastAPI, pydantic,
the routes, the pools), which never become garbage: one full collection took 45 ms on a
quiet machine, and under the freshness bench's load the read API spent 1.6 to 2.3 s of 35 in
ten to fourteen of them, the longest 230 to 340 ms, while every request waited (ADR 0019,
session 23 update). `gc.freeze()` moves what exists at start into a permanent generation
the collector does not walk.

What requests allocate and drop is freed by reference counting; the collector is only
for cycles, yet with its default threshold (700 allocations) it ran a young collection
every few requests, 1,500 of them in 35 s, and each promoted the objects of the requests
in flight, which then filled the old generation and set off the full collections. At
YOUNG_THRESHOLD it runs some seventy times in the same 35 s."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Call once a process has built what it keeps for its lifetime, before it serves."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
