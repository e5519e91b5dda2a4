"""The production topology on one machine: `scripts/stack up | status | down`.

`up` starts a PostgreSQL server and a Kafka broker the way the test harness does (a fresh
cluster and a single KRaft node on free loopback ports), creates the schema once, then
starts the write API, the read API, the relay, two projectors and the expiry worker as
separate `orderflow` processes, each with its own log file, and prints the addresses and
an admin token. `down` stops every process and both servers and deletes their data; the
logs stay. Everything lives under one folder (default `.orderflow-stack/`): `stack.json`
(what runs where), `logs/`, and the servers' data."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.harness.kafka import KafkaBroker
from tests.harness.ports import free_port
from tests.harness.postgres import PostgresServer, stop_cluster

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))
STATE_FILE = "stack.json"
# name -> the orderflow command it runs; each gets its own metrics port
SERVICES = {
    "write-api": ["write-api"],
    "read-api": ["read-api"],
    "relay": ["relay"],
    "projector-1": ["project"],
    "projector-2": ["project"],
    "worker": ["worker"],
}
READY_TIMEOUT_S = 90
STOP_GRACE_S = 30  # for a service's clean stop, then it is killed
KILLED_GONE_S = 10  # for a killed process to end


@dataclass
class Stack:
    folder: str
    database_url: str
    kafka: str
    write_api: str
    read_api: str
    postgres_root: str
    kafka_pid: int
    pids: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    def save(self) -> None:
        Path(self.folder, STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, folder: Path) -> Stack | None:
        path = folder / STATE_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else None


def _environment(folder: Path, database_url: str, kafka: str) -> dict[str, str]:
    secrets_file = folder / "secrets.json"
    if not secrets_file.exists():
        secrets_file.write_text(
            json.dumps(
                {
                    "ORDERFLOW_JWT_SECRET": secrets.token_urlsafe(32),
                    "ORDERFLOW_PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(24),
                }
            )
        )
        secrets_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(json.loads(secrets_file.read_text()))
    env.update(
        ORDERFLOW_DATABASE_URL=database_url,
        ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS=kafka,
        ORDERFLOW_DATA_DIR=str(folder / "data"),
        ORDERFLOW_LOG_FORMAT="json",
    )
    return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _wait(what: str, ready: Callable[[], bool], stack: Stack, logs: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        dead = [name for name, pid in stack.pids.items() if not _alive(pid)]
        if dead:
            raise SystemExit(f"stack: {', '.join(dead)} exited; see {logs}/{dead[0]}.log")
        if time.monotonic() > deadline:
            raise SystemExit(f"stack: {what} not ready within {READY_TIMEOUT_S} s; see {logs}")
        time.sleep(0.3)


def up(folder: Path) -> Stack:
    existing = Stack.load(folder)
    if existing is not None:
        raise SystemExit(f"stack: already up in {folder} (scripts/stack down first)")
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    print("stack: starting PostgreSQL and Kafka …", file=sys.stderr)
    postgres = PostgresServer(folder / "postgres")
    postgres.start()
    broker = KafkaBroker(folder / "kafka", detached=True)
    try:
        broker.start()
    except BaseException:
        postgres.stop()
        raise
    assert broker.pid is not None
    database_url = postgres.create_database("orderflow")
    write_port, read_port = free_port(), free_port()
    stack = Stack(
        folder=str(folder),
        database_url=database_url,
        kafka=broker.bootstrap_servers,
        write_api=f"http://127.0.0.1:{write_port}",
        read_api=f"http://127.0.0.1:{read_port}",
        postgres_root=str(postgres.root),
        kafka_pid=broker.pid,
    )
    stack.save()
    env = _environment(folder, database_url, broker.bootstrap_servers)
    env.update(ORDERFLOW_WRITE_PORT=str(write_port), ORDERFLOW_READ_PORT=str(read_port))
    init = subprocess.run([ORDERFLOW, "db", "init"], env=env, capture_output=True, text=True)
    if init.returncode != 0:
        down(folder)
        raise SystemExit(f"stack: db init failed:\n{init.stderr}")
    for name, command in SERVICES.items():
        service_env = dict(env)
        if not name.endswith("-api"):  # the APIs serve /metrics themselves
            stack.metrics[name] = free_port()
            service_env["ORDERFLOW_METRICS_PORT"] = str(stack.metrics[name])
        with (logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [ORDERFLOW, *command],
                env=service_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives this command; `down` stops it
            )
        stack.pids[name] = process.pid
        stack.save()
    _wait("the APIs", lambda: _answers(f"{stack.write_api}/ready"), stack, logs)
    _wait("the read API", lambda: _answers(f"{stack.read_api}/ready"), stack, logs)
    others = [n for n in SERVICES if not n.endswith("-api")]
    _wait(
        "relay, projectors and worker",
        lambda: all(_answers(f"http://127.0.0.1:{stack.metrics[n]}/metrics") for n in others),
        stack,
        logs,
    )
    return stack


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(pid, sig)


def _stop(pids: list[int]) -> None:
    """SIGTERM to each process's group, SIGKILL to those still running after STOP_GRACE_S;
    returns once they are gone (a killed process takes a moment to end)."""
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + KILLED_GONE_S
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def down(folder: Path) -> None:
    stack = Stack.load(folder)
    if stack is None:
        print(f"stack: nothing runs from {folder}", file=sys.stderr)
        return
    _stop(list(stack.pids.values()))  # the services first: a clean stop needs the broker
    _stop([stack.kafka_pid])
    stop_cluster(Path(stack.postgres_root))
    for leftover in ("kafka", "postgres", "data", STATE_FILE, "secrets.json"):
        path = folder / leftover
        if path.is_dir():
            subprocess.run(["rm", "-rf", str(path)], check=False)
        else:
            path.unlink(missing_ok=True)
    print(f"stack: stopped; logs kept in {folder / 'logs'}", file=sys.stderr)


def status(folder: Path) -> int:
    stack = Stack.load(folder)
    if stack is None:
        print(f"stack: not up (no {folder / STATE_FILE})")
        return 1
    rows = {name: _alive(pid) for name, pid in stack.pids.items()}
    rows["kafka"] = _alive(stack.kafka_pid)
    rows["postgres"] = Path(stack.postgres_root, "data", "postmaster.pid").exists()
    for name, running in rows.items():
        print(f"{name:<12} {'running' if running else 'STOPPED'}")
    healthy = all(rows.values()) and _answers(f"{stack.write_api}/ready")
    healthy = healthy and _answers(f"{stack.read_api}/ready")
    print(f"write API    {stack.write_api}\nread API     {stack.read_api}")
    return 0 if healthy else 1


def admin_token(folder: Path, stack: Stack) -> str:
    env = _environment(folder, stack.database_url, stack.kafka)
    minted = subprocess.run(
        [ORDERFLOW, "auth", "token", "--sub", "stack-admin", "--role", "admin", "--ttl", "43200"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=Path(".orderflow-stack"))
    args = parser.parse_args()
    folder: Path = args.dir.resolve()
    if args.action == "down":
        down(folder)
        return 0
    if args.action == "status":
        return status(folder)
    stack = up(folder)
    print(f"write API:  {stack.write_api}  (docs at /docs)")
    print(f"read API:   {stack.read_api}")
    print(f"PostgreSQL: {stack.database_url}")
    print(f"Kafka:      {stack.kafka}")
    print(f"logs:       {folder / 'logs'}")
    print(f"admin token (12 h): {admin_token(folder, stack)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
