"""Freshness benchmark: how long after its 201 an order shows on the read API.

On one fresh PostgreSQL server and one fresh Kafka broker it starts the production
topology as real processes (`orderflow write-api`, `read-api`, `relay`, `project`), then
places orders over HTTP at fixed rates, open loop (each at its scheduled time, whatever
the answers before it), on bare keep-alive connections (bench/measure/http_client.py): a
full client took more than half a core at 200 orders/s from the processes measured. From
each order's 201 it polls `GET /orders/{id}` (no `min_position`) until the order shows,
and reports the time it took: p50, p99 and max per rate. It runs 200 orders/s first,
then rises until p99 reaches 1 s or the write API falls behind the offered rate; the
highest rate before that is the one it sustains. Not a test.
Run it from the repository root (see bench/README.md):

    .venv/bin/python bench/freshness.py [--seconds S] [--rates 200,300,...] [--poll-ms MS]
                                        [--warmup-s S]
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
# Not measured: the broker's JIT compiles its hot paths in the first seconds of load (a
# produce request cost twice the broker CPU in the first 10 s as in the next 30), and a
# production system is warm.
DEFAULT_WARMUP_S = 10.0
VISIBLE_LIMIT_S = 30.0  # an order not shown by then counts as never shown
SKUS = 50


@dataclass(frozen=True)
class Step:
    offered: int  # orders per second asked for
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
class Clients:
    """Keep-alive connections to the write API and to the read API, shared by the orders."""

    write: Pool
    read: Pool
    headers: dict[str, str]


async def one_order(
    clients: Clients, n: int, poll_s: float, found: list[float]
) -> tuple[bool, int]:
    """Places order n; returns (placed, GETs made) and appends its visibility time."""
    lines = [{"sku": f"F-{n % SKUS:03d}", "quantity": 1}]
    body = json.dumps({"customer_id": f"c{n % 500}", "lines": lines}).encode()
    posted = {**clients.headers, "Content-Type": "application/json"}
    placed = await clients.write.request("POST", "/orders", posted, body)
    if placed.status != 201:
        return False, 0
    answered = time.perf_counter()
    path = f"/orders/{json.loads(placed.body)['order_id']}"
    gets = 0
    while time.perf_counter() - answered < VISIBLE_LIMIT_S:
        gets += 1
        if (await clients.read.request("GET", path, clients.headers)).status == 200:
            found.append(time.perf_counter() - answered)
            break
        await asyncio.sleep(poll_s)
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


async def drive(topology: Topology, rate: int, seconds: float, poll_s: float) -> Step:
    found: list[float] = []
    with Backlog(topology.dsn) as backlog:
        began, spent = time.perf_counter(), cpu_seconds(topology)
        results = await _place_all(topology, rate, seconds, poll_s, found)
        cores = cores_between(spent, cpu_seconds(topology), time.perf_counter() - began)
    placed = sum(1 for ok, _ in results if ok)
    ms = sorted(1000 * s for s in found) or [float("nan")]
    return Step(
        offered=rate,
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
    topology: Topology, rate: int, seconds: float, poll_s: float, found: list[float]
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
            tasks.append(asyncio.create_task(one_order(clients, n, poll_s, found)))
        return await asyncio.gather(*tasks)
    finally:
        await clients.write.close()
        await clients.read.close()


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


# --- report ----------------------------------------------------------------------------------


def report(steps: list[Step], seconds: float, poll_ms: float, warmup_s: float) -> None:
    table = Table(title=f"Freshness: 201 until GET /orders/{{id}} shows it ({seconds:g} s a rate)")
    columns = ("offered/s", "achieved/s", "orders", "p50 ms", "p99 ms", "max ms", "GETs/s")
    for column in (*columns, "relay behind", "projector behind"):
        table.add_column(column, justify="right")
    table.add_column("sustained")
    for s in steps:
        table.add_row(
            str(s.offered),
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
    parties = list(steps[0].cores) if steps else []
    for party in parties:
        cpu.add_column(party, justify="right")
    cpu.add_column("all", justify="right")
    for s in steps:
        shares = [f"{s.cores[p]:.2f}" for p in parties]
        cpu.add_row(str(s.offered), *shares, f"{sum(s.cores.values()):.2f}")
    at_goal = next((s for s in steps if s.offered == GOAL_RATE), None)
    sustained = max((s.offered for s in steps if s.sustained), default=0)
    notes = [
        f"after {warmup_s:g} s of orders at the first rate, not measured; polled every"
        f" {poll_ms:g} ms from the 201; {os.cpu_count()} CPUs shared by every"
        " process and this load generator; sustained: p99 under"
        f" {SUSTAINED_P99_MS:g} ms, every order shown, ≥ {SUSTAINED_SHARE:.0%} of the rate placed;"
        f" behind: the most positions waiting, sampled every {SAMPLE_S:g} s, between the log's"
        " head and the relay, and between the relay and the slowest projection",
    ]
    if at_goal is not None:
        verdict = "met" if at_goal.p99_ms <= GOAL_P99_MS and at_goal.sustained else "NOT met"
        notes.append(f"goal p99 ≤ {GOAL_P99_MS:g} ms at {GOAL_RATE}/s: {verdict}")
    notes.append(f"highest rate sustained: {sustained}/s")
    figures = {
        "bench": "freshness",
        "seconds_per_rate": seconds,
        "poll_ms": poll_ms,
        "warmup_s": warmup_s,
        "cpus": os.cpu_count(),
        "steps": [asdict(s) for s in steps],
        "at_goal_rate": asdict(at_goal) if at_goal else None,
        "goal_met": bool(at_goal and at_goal.p99_ms <= GOAL_P99_MS and at_goal.sustained),
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
    parser.add_argument("--poll-ms", type=float, default=10.0, help="GET interval per order")
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=DEFAULT_WARMUP_S,
        help="orders at the first rate before measuring, not measured",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    steps: list[Step] = []
    with (
        bench_session("orderflow-freshness-") as (work_dir, _),
        topology(work_dir) as running,
    ):
        stock(running)
        if args.warmup_s > 0:
            status.print(f"warming up: {rates[0]} orders/s for {args.warmup_s:g} s…")
            asyncio.run(drive(running, rates[0], args.warmup_s, args.poll_ms / 1000))
        for n, rate in enumerate(rates):
            status.print(f"{rate} orders/s for {args.seconds:g} s…")
            step = asyncio.run(drive(running, rate, args.seconds, args.poll_ms / 1000))
            steps.append(step)
            status.print(f"  p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, max {step.max_ms} ms")
            if n > 0 and not step.sustained:
                break
    report(steps, args.seconds, args.poll_ms, args.warmup_s)


if __name__ == "__main__":
    main()
