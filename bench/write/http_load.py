"""The HTTP load: closed-loop clients on bare HTTP/1.1 keep-alive connections, in the
bench's own process, with the CPU of every party measured over the same window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.measure.cpu import Cpu, CpuClock, Processes
from bench.measure.http_client import Answer, Connection
from bench.write.results import Plan, Result
from bench.write.servers import Server


@dataclass(frozen=True)
class Call:
    path: str
    body: bytes
    headers: dict[str, str]
    method: str = "POST"


MakeCall = Callable[[int], Call]  # client index -> its next request


@dataclass(frozen=True)
class Window:
    """Only requests that complete between start and end count; earlier ones warm up."""

    start: float
    end: float


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def record(self, answer: Answer, seconds: float) -> None:
        if 200 <= answer.status < 300:
            self.latencies_ms.append(seconds * 1000)
            return
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{answer.status} {answer.body[:300].decode(errors='replace')}"


async def client_loop(
    port: int, make_call: MakeCall, index: int, window: Window, tally: Tally
) -> None:
    """One closed-loop client on its own keep-alive connection: next request on the answer."""
    connection = await Connection.open(port)
    try:
        while True:
            call = make_call(index)
            began = time.perf_counter()
            if began >= window.end:
                return
            answer = await connection.request(call.method, call.path, call.headers, call.body)
            done = time.perf_counter()
            if window.start <= done <= window.end:
                tally.record(answer, done - began)
    finally:
        await connection.close()


async def cpu_over(window: Window, processes: Processes) -> Cpu:
    await asyncio.sleep(window.start - time.perf_counter())
    start = CpuClock.read(processes)
    await asyncio.sleep(window.end - time.perf_counter())
    return Cpu.between(start, CpuClock.read(processes))


async def load(
    server: Server, make_call: MakeCall, clients: int, plan: Plan, postmaster: int
) -> Result:
    now = time.perf_counter()
    window = Window(now + plan.warmup_s, now + plan.warmup_s + plan.seconds)
    tally = Tally()
    loops = [client_loop(server.port, make_call, i, window, tally) for i in range(clients)]
    processes = Processes(time.process_time, postmaster, server.pids)
    cpu, *_ = await asyncio.gather(cpu_over(window, processes), *loops)
    assert isinstance(cpu, Cpu)
    return Result(
        clients,
        len(tally.latencies_ms) / plan.seconds,
        len(tally.latencies_ms),
        tally.errors,
        tally.latencies_ms,
        cpu,
        tally.first_error,
    )
