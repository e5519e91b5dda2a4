"""A serving process's start-up heap is frozen and young collections are rarer; every
long-running command settles its heap before it serves."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from infra import heap
from infra.cli import servers

PROBE = """
import gc, json
from fastapi import FastAPI
app = FastAPI()  # some start-up heap to freeze
before = gc.get_threshold()
from infra import heap
heap.settle()
print(json.dumps({"frozen": gc.get_freeze_count(), "before": before, "after": gc.get_threshold()}))
"""


def test_settle_freezes_the_heap_and_raises_only_the_young_threshold() -> None:
    # in a process of its own: this one's collector stays as pytest left it
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    seen = json.loads(probe.stdout)
    assert seen["frozen"] > 10_000  # FastAPI's and pydantic's objects, at least
    assert seen["after"] == [heap.YOUNG_THRESHOLD, *seen["before"][1:]]
    assert seen["before"][0] < heap.YOUNG_THRESHOLD


class Config:
    def get_loop_factory(self) -> None:
        return None


class Server:
    config = Config()

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    async def serve(self) -> None:
        self.calls.append("served")


def test_a_server_is_settled_before_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(heap, "settle", lambda: calls.append("settled"))
    server: Any = Server(calls)
    servers._serve(server)
    assert calls == ["settled", "served"]
