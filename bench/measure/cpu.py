"""CPU accounting from /proc: a process, a process tree, the whole machine.

A figure is skewed when other work shares the cores, so each bench reads the machine's busy
time as well as its own parties' and reports the difference as `other`.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg


def ticks_to_s(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from the state field on (the name before it may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_pid(pid: int) -> int:
    return int(_stat(pid)[1])


def process_cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return ticks_to_s(int(fields[11]) + int(fields[12]))  # utime, stime


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):  # gone since listed
                if parent_pid(int(entry.name)) == pid:
                    children.append(int(entry.name))
    return children


def tree_cpu_s(pid: int) -> float:
    """A process with its children: the live ones, and those it reaped (cutime, cstime)."""
    own = ticks_to_s(sum(int(n) for n in _stat(pid)[11:15]))
    live = 0.0
    for child in child_pids(pid):
        with suppress(OSError, IndexError):
            live += process_cpu_s(child)
    return own + live


def machine_busy_s() -> float:
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks_to_s(sum(ticks) - ticks[3] - ticks[4])  # all but idle and iowait


def busy_cores(seconds: float = 1.0) -> float:
    """How busy the machine is with nothing of ours running: other work skews every figure."""
    before = machine_busy_s()
    time.sleep(seconds)
    return (machine_busy_s() - before) / seconds


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(dsn: str) -> int:
    """The backend's parent, read while the backend lives: once the connection closes it
    may be gone from /proc."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return parent_pid(int(row[0]))


@dataclass(frozen=True)
class Processes:
    """Whose CPU a measurement accounts for; the rest of the machine's is other work."""

    loadgen: Callable[[], float]
    postmaster: int
    servers: tuple[int, ...] = ()


@dataclass(frozen=True)
class CpuClock:
    """Cumulative CPU seconds of each party, and of the whole machine."""

    wall: float
    loadgen: float
    server: float
    postgres: float
    machine: float

    @staticmethod
    def read(processes: Processes) -> CpuClock:
        server = sum(process_cpu_s(pid) for pid in processes.servers)
        return CpuClock(
            time.perf_counter(),
            processes.loadgen(),
            server,
            tree_cpu_s(processes.postmaster),
            machine_busy_s(),
        )


@dataclass(frozen=True)
class Cpu:
    """Average cores busy during a measurement (1.0 = one core all the time)."""

    loadgen: float
    server: float
    postgres: float
    other: float

    @staticmethod
    def between(start: CpuClock, end: CpuClock) -> Cpu:
        wall = end.wall - start.wall
        loadgen, server, postgres, machine = (
            (getattr(end, name) - getattr(start, name)) / wall
            for name in ("loadgen", "server", "postgres", "machine")
        )
        return Cpu(loadgen, server, postgres, max(0.0, machine - loadgen - server - postgres))


@dataclass(frozen=True)
class ProcessClock:
    """Wall time, this process's CPU (every thread) and the machine's busy time."""

    wall: float
    python: float
    machine: float

    @staticmethod
    def read() -> ProcessClock:
        return ProcessClock(time.perf_counter(), time.process_time(), machine_busy_s())
