"""Pausing Python's cyclic garbage collector while a batch of events is decoded or folded.

Decoding and folding make thousands of young dicts and no reference cycles, yet each
few hundred allocations set the collector walking them, and every so often the whole
heap (measured: a quarter to a half of a log read, and of a projector's decoding)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """For a bounded piece of work only: what it leaves is collected once it is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
