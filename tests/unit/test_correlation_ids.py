"""Correlation ids the APIs make: unique within a process and across forked ones, and
within what an incoming id may be (so one made here is echoed back unchanged)."""

from __future__ import annotations

import os

from infra.http.correlation import _SANE, made_id


def test_made_ids_are_distinct_and_sane() -> None:
    made = [made_id() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert all(_SANE.match(cid) for cid in made)


def test_a_forked_process_makes_ids_of_its_own() -> None:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write_end, made_id().encode())
        os._exit(0)
    os.close(write_end)
    theirs = os.read(read_end, 100).decode()
    os.waitpid(child, 0)
    ours = made_id()
    assert theirs.split("-")[0] != ours.split("-")[0]
