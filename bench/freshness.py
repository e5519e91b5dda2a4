"""Freshness benchmark: how long after its 201 an order shows on the read API.

On one fresh PostgreSQL server and one fresh Kafka broker it starts the production
topology as real processes (`orderflow write-api`, `read-api`, `relay`, `project`), then
places orders over HTTP at fixed rates, open loop (each at its scheduled time, whatever
the answers before it), on bare keep-alive connections (bench/measure/http_client.py): a
full client took more than half a core at 200 orders/s from the processes measured. From
each order's 201 it reads `GET /orders/{id}` (no `min_position`) until the order shows,
and reports the time it took: p50, p99 and max per rate. By default each order is read
with one GET saying `Prefer: wait=10`: the read API answers the moment the order is in the
read models (ADR 0029). It runs 200 orders/s first, then rises until p99 reaches 1 s or
the write API falls behind the offered rate; the highest rate before that is the one it
sustains. Last, it runs 200 orders/s again with the orders polled every 10 ms (a GET, then
another 10 ms after its answer), as a client without the preference would. Not a test.
Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/freshness.py [--seconds S] [--rates 200,300,...] [--warmup-s S]
                                        [--wait-s S] [--poll-ms MS] [--no-compare]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import httpx2
from rich.table import Table

from bench.measure.cpu import machine_busy_s, tree_cpu_s
from bench.measure.http_client import Pool
from bench.measure.report import print_report, status
from bench.measure.services import bench_session
from bench.topology import SAMPLE_S, Backlog, Topology, topology

GOAL_RATE = 200
GOAL_P99_MS = 100.0
SUSTAINED_P99_MS = 1000.0
SUSTAINED_SHARE = 0.95  # of the offered rate the write API must achieve
DEFAULT_RATES = (200, 100, 300, 400, 600, 800, 1000)  # 200 first: the goal's rate
DEFAULT_SECONDS = 20.0
# Not measured: the broker's JIT compiles its hot paths in the first minute of load, and a
# production system is warm. After 10 s, the first step at 200/s still found the broker at
# 0.32-0.33 cores; the same rate at the end of the run, 0.13 (ADR 0029, session 25).
DEFAULT_WARMUP_S = 60.0
VISIBLE_LIMIT_S = 30.0  # an order not shown by then counts as never shown
SKUS = 50


@dataclass(frozen=True)
class Step:
    offered: int  # orders per second asked for
    reads: str  # how the load read the orders back (Reads.label)
    achieved: float  # 201s per second of the schedule
    orders: int
    refused: int  # answers other than 201
    unseen: int  # placed but not shown within VISIBLE_LIMIT_S
    p50_ms: float
    p99_ms: float
    max_ms: float
    gets: int
    relay_behind: int  # most positions the relay was behind the head, sampled
    projector_behind: int  # most positions a projection's watermark was behind the relay
    cores: dict[str, float]  # CPU each party took while the orders were placed; 1.0 = a core

    @property
    def sustained(self) -> bool:
        return (
            self.achieved >= SUSTAINED_SHARE * self.offered
            and self.unseen == 0
            and self.p99_ms < SUSTAINED_P99_MS
        )


# --- the load ---------------------------------------------------------------------------------


def headers(topology: Topology) -> dict[str, str]:
    return {"Authorization": f"Bearer {topology.token}"}


def stock(topology: Topology) -> None:
    with httpx2.Client(base_url=topology.write_url, headers=headers(topology), timeout=30) as c:
        for n in range(SKUS):
            item = {"sku": f"F-{n:03d}", "name": f"item {n}", "unit_price_cents": 500}
            answer = c.post("/inventory", json={**item, "on_hand": 1_000_000})
            if answer.status_code != 201:
                raise RuntimeError(f"registering {item['sku']}: {answer.status_code} {answer.text}")


@dataclass(frozen=True)
class Reads:
    """How the load reads an order back: every poll_s, or waiting up to wait_s on the
    server (`Prefer: wait`) for it to arrive."""

    poll_s: float
    wait_s: int

    def headers(self) -> dict[str, str]:
        return {"Prefer": f"wait={self.wait_s}"} if self.wait_s else {}

    def label(self) -> str:
        return f"wait={self.wait_s}" if self.wait_s else f"poll {1000 * self.poll_s:g} ms"


@dataclass(frozen=True)
class Clients:
    """Keep-alive connections to the write API and to the read API, shared by the orders."""

    write: Pool
    read: Pool
    headers: dict[str, str]


async def one_order(clients: Clients, n: int, reads: Reads, found: list[float]) -> tuple[bool, int]:
    """Places order n; returns (placed, GETs made) and appends its visibility time."""
    lines = [{"sku": f"F-{n % SKUS:03d}", "quantity": 1}]
    body = json.dumps({"customer_id": f"c{n % 500}", "lines": lines}).encode()
    posted = {**clients.headers, "Content-Type": "application/json"}
    placed = await clients.write.request("POST", "/orders", posted, body)
    if placed.status != 201:
        return False, 0
    answered = time.perf_counter()
    path = f"/orders/{json.loads(placed.body)['order_id']}"
    asked = {**clients.headers, **reads.headers()}
    gets = 0
    while time.perf_counter() - answered < VISIBLE_LIMIT_S:
        gets += 1
        if (await clients.read.request("GET", path, asked)).status == 200:
            found.append(time.perf_counter() - answered)
            break
        if not reads.wait_s:
            await asyncio.sleep(reads.poll_s)
    return True, gets


def cpu_seconds(topology: Topology) -> dict[str, float]:
    """Cumulative CPU of each party: the OrderFlow processes, Kafka, PostgreSQL (every
    backend), this load generator, and the whole machine."""
    spent = {name: tree_cpu_s(pid) for name, pid in topology.pids.items()}
    spent["PostgreSQL"] = tree_cpu_s(topology.postmaster)
    spent["load"] = time.process_time()
    spent["machine"] = machine_busy_s()
    return spent


def cores_between(
    before: dict[str, float], after: dict[str, float], wall: float
) -> dict[str, float]:
    cores = {name: round((after[name] - before[name]) / wall, 2) for name in before}
    parties = sum(v for name, v in cores.items() if name != "machine")
    cores["other"] = round(max(0.0, cores.pop("machine") - parties), 2)
    return cores


async def drive(topology: Topology, rate: int, seconds: float, reads: Reads) -> Step:
    found: list[float] = []
    with Backlog(topology.dsn) as backlog:
        began, spent = time.perf_counter(), cpu_seconds(topology)
        results = await _place_all(topology, rate, seconds, reads, found)
        cores = cores_between(spent, cpu_seconds(topology), time.perf_counter() - began)
    placed = sum(1 for ok, _ in results if ok)
    ms = sorted(1000 * s for s in found) or [float("nan")]
    return Step(
        offered=rate,
        reads=reads.label(),
        achieved=round(placed / seconds, 1),
        orders=placed,
        refused=int(rate * seconds) - placed,
        unseen=placed - len(found),
        p50_ms=round(statistics.median(ms), 1),
        p99_ms=round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        max_ms=round(ms[-1], 1),
        gets=sum(gets for _, gets in results),
        relay_behind=backlog.relay,
        projector_behind=backlog.projector,
        cores=cores,
    )


async def _place_all(
    topology: Topology, rate: int, seconds: float, reads: Reads, found: list[float]
) -> list[tuple[bool, int]]:
    clients = Clients(
        Pool(port_of(topology.write_url)), Pool(port_of(topology.read_url)), headers(topology)
    )
    try:
        total = int(rate * seconds)
        began = time.perf_counter()
        tasks = []
        for n in range(total):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_order(clients, n, reads, found)))
        return await asyncio.gather(*tasks)
    finally:
        await clients.write.close()
        await clients.read.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


# --- report ----------------------------------------------------------------------------------


def report(steps: list[Step], seconds: float, reads: Reads, warmup_s: float) -> None:
    table = Table(title=f"Freshness: 201 until GET /orders/{{id}} shows it ({seconds:g} s a rate)")
    columns = ("offered/s", "reads", "achieved/s", "orders", "p50 ms", "p99 ms", "max ms")
    for column in (*columns, "GETs/s", "relay behind", "projector behind"):
        table.add_column(column, justify="right")
    table.add_column("sustained")
    for s in steps:
        table.add_row(
            str(s.offered),
            s.reads,
            f"{s.achieved:g}",
            str(s.orders),
            f"{s.p50_ms:g}",
            f"{s.p99_ms:g}",
            f"{s.max_ms:g}",
            f"{s.gets / seconds:.0f}",
            str(s.relay_behind),
            str(s.projector_behind),
            "yes" if s.sustained else "no",
        )
    cpu = Table(title=f"CPU while the orders were placed (cores; the machine has {os.cpu_count()})")
    cpu.add_column("offered/s", justify="right")
    cpu.add_column("reads", justify="right")
    parties = list(steps[0].cores) if steps else []
    for party in parties:
        cpu.add_column(party, justify="right")
    cpu.add_column("all", justify="right")
    for s in steps:
        shares = [f"{s.cores[p]:.2f}" for p in parties]
        cpu.add_row(str(s.offered), s.reads, *shares, f"{sum(s.cores.values()):.2f}")
    main = [s for s in steps if s.reads == reads.label()]
    at_goal = next((s for s in main if s.offered == GOAL_RATE), None)
    polled = next((s for s in steps if s.reads != reads.label()), None)
    sustained = max((s.offered for s in main if s.sustained), default=0)
    notes = [
        f"after {warmup_s:g} s of orders at the first rate, not measured; reads: `wait=N` is one"
        " GET with `Prefer: wait=N` from the 201 (the read API answers when the order"
        " arrives), `poll M ms` a GET every M ms after the last answer;"
        f" {os.cpu_count()} CPUs shared by every"
        " process and this load generator; sustained: p99 under"
        f" {SUSTAINED_P99_MS:g} ms, every order shown, ≥ {SUSTAINED_SHARE:.0%} of the rate placed;"
        f" behind: the most positions waiting, sampled every {SAMPLE_S:g} s, between the log's"
        " head and the relay, and between the relay and the slowest projection",
    ]
    goal_met = bool(at_goal and at_goal.p99_ms <= GOAL_P99_MS and at_goal.sustained)
    if at_goal is not None:
        verdict = "met" if goal_met else "NOT met"
        notes.append(f"goal p99 ≤ {GOAL_P99_MS:g} ms at {GOAL_RATE}/s ({reads.label()}): {verdict}")
    if polled is not None:
        notes.append(
            f"the same rate with the orders polled ({polled.reads}): p99 {polled.p99_ms:g} ms"
        )
    notes.append(f"highest rate sustained ({reads.label()}): {sustained}/s")
    figures = {
        "bench": "freshness",
        "seconds_per_rate": seconds,
        "reads": reads.label(),
        "warmup_s": warmup_s,
        "cpus": os.cpu_count(),
        "steps": [asdict(s) for s in steps],
        "at_goal_rate": asdict(at_goal) if at_goal else None,
        "at_goal_rate_polled": asdict(polled) if polled else None,
        "goal_met": goal_met,
        "sustained_rate": sustained,
    }
    print_report([table, cpu], notes, [], figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per rate")
    parser.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        help="orders/s to try, in order; after the first, it stops at the first not sustained",
    )
    parser.add_argument(
        "--wait-s",
        type=int,
        default=10,
        help="read each order with one GET and Prefer: wait=S; 0: poll every --poll-ms",
    )
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=10.0,
        help="GET interval per order when polling: with --wait-s 0, and for the extra step at"
        f" {GOAL_RATE}/s that compares polling (none with --no-compare)",
    )
    parser.add_argument("--no-compare", action="store_true", help="no polled step")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=DEFAULT_WARMUP_S,
        help="orders at the first rate before measuring, not measured",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    reads = Reads(args.poll_ms / 1000, args.wait_s)
    steps: list[Step] = []
    with (
        bench_session("orderflow-freshness-") as (work_dir, _),
        topology(work_dir) as running,
    ):
        stock(running)
        if args.warmup_s > 0:
            status.print(f"warming up: {rates[0]} orders/s for {args.warmup_s:g} s…")
            asyncio.run(drive(running, rates[0], args.warmup_s, reads))
        for n, rate in enumerate(rates):
            status.print(f"{rate} orders/s for {args.seconds:g} s…")
            step = asyncio.run(drive(running, rate, args.seconds, reads))
            steps.append(step)
            status.print(f"  p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, max {step.max_ms} ms")
            if n > 0 and not step.sustained:
                break
        if reads.wait_s and not args.no_compare:
            polling = Reads(args.poll_ms / 1000, 0)
            status.print(f"{GOAL_RATE} orders/s for {args.seconds:g} s, polled…")
            step = asyncio.run(drive(running, GOAL_RATE, args.seconds, polling))
            steps.append(step)
            status.print(f"  p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, max {step.max_ms} ms")
    report(steps, args.seconds, reads, args.warmup_s)


if __name__ == "__main__":
    main()
