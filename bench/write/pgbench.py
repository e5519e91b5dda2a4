"""The database's own ceiling: pgbench doing one single-row INSERT per transaction."""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from bench.measure.cpu import Cpu, CpuClock, Processes, child_pids, children_cpu_s, postmaster_pid
from bench.write.database import ROWS_TABLE
from bench.write.results import Plan, Result
from tests.harness.postgres import PASSWORD, USER, PostgresServer, pg_bin_dir

PGBENCH_CLIENTS = (1, 8)
PGBENCH_ROW = '{"lines": [{"sku": "P-0001", "quantity": 2}, {"sku": "P-0002", "quantity": 1}]}'


def pgbench_command(
    pg: PostgresServer,
    dbname: str,
    script: Path,
    clients: int,
    seconds: int,
    log_prefix: Path | None = None,
) -> list[str]:
    """Over TCP like the apps; prepared statements, its fastest protocol: the DB's ceiling."""
    return [
        str(pg_bin_dir() / "pgbench"),
        *("-h", "127.0.0.1", "-p", str(pg.port), "-U", USER),
        *("-n", "-M", "prepared", "-f", str(script)),
        *("-c", str(clients), "-j", str(min(clients, os.cpu_count() or 1))),
        *("-T", str(seconds)),
        *(("-l", f"--log-prefix={log_prefix}") if log_prefix else ()),
        dbname,
    ]


def await_reaped(postmaster: int, children: int, timeout_s: float = 2.0) -> None:
    """pgbench's backends exit with it, and /proc reads a zombie's CPU as 0: only once the
    postmaster has reaped them does their CPU show, in its children's total."""
    deadline = time.monotonic() + timeout_s
    while len(child_pids(postmaster)) > children and time.monotonic() < deadline:
        time.sleep(0.01)


def run_pgbench(command: list[str]) -> str:
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def logged_latencies_ms(log_dir: Path) -> list[float]:
    """From pgbench's per-transaction logs: the third field is the latency in µs."""
    latencies = []
    for log in log_dir.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return latencies


def pgbench_figure(output: str, pattern: str) -> float:
    match = re.search(pattern, output)
    if match is None:
        raise RuntimeError(f"pgbench printed no {pattern!r}:\n{output}")
    return float(match.group(1))


def measure_pgbench(
    pg: PostgresServer, dbname: str, work_dir: Path, plan: Plan
) -> dict[int, Result]:
    script = work_dir / "insert.sql"
    script.write_text(f"INSERT INTO {ROWS_TABLE} (payload) VALUES ('{PGBENCH_ROW}');\n")
    seconds = max(1, round(plan.seconds))
    warmup = pgbench_command(pg, dbname, script, max(PGBENCH_CLIENTS), max(1, round(plan.warmup_s)))
    run_pgbench(warmup)
    results = {}
    for clients in PGBENCH_CLIENTS:
        log_dir = work_dir / f"pgbench-log-{clients}"
        log_dir.mkdir()
        command = pgbench_command(pg, dbname, script, clients, seconds, log_dir / "tx")
        processes = Processes(children_cpu_s, postmaster_pid(pg.dsn()))
        backends_before = len(child_pids(processes.postmaster))
        start = CpuClock.read(processes)
        output = run_pgbench(command)
        ended = time.perf_counter()
        await_reaped(processes.postmaster, backends_before)
        cpu = Cpu.between(start, replace(CpuClock.read(processes), wall=ended))
        tps = pgbench_figure(output, r"tps = ([\d.]+) \(without initial connection time\)")
        failed = re.search(r"number of failed transactions: (\d+)", output)
        results[clients] = Result(
            clients,
            tps,
            int(pgbench_figure(output, r"number of transactions actually processed: (\d+)")),
            int(failed.group(1)) if failed else 0,
            logged_latencies_ms(log_dir),
            cpu,
        )
    return results
