"""Starting what a bench measures against, and stopping it on every way out.

PostgreSQL and Kafka come from the test harness (tests/harness), like the suite's; every
start registers its stop on the caller's ExitStack, so errors, Ctrl-C and `kill` clean up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from tests.harness.kafka import KafkaBroker, ensure_kafka_jars
from tests.harness.ports import accepts_connections
from tests.harness.postgres import PostgresServer

ORDERFLOW_CLI = str(Path(sys.executable).with_name("orderflow"))


def environment_without_settings() -> dict[str, str]:
    """This process's environment minus every ORDERFLOW_ variable, so the processes a bench
    starts take only the settings it gives them."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}


def exit_on_sigterm(signum: int, _: FrameType | None) -> None:
    """So a `kill` unwinds through the cleanups like Ctrl-C does."""
    sys.exit(128 + signum)


@contextmanager
def bench_session(prefix: str = "orderflow-bench-") -> Iterator[tuple[Path, ExitStack]]:
    """A scratch directory and the stack of cleanups, both undone however the run ends."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, ExitStack() as stack:
        yield Path(tmp), stack


def start_postgres(work_dir: Path, stack: ExitStack) -> PostgresServer:
    pg = PostgresServer(work_dir / "postgres")
    pg.start()
    stack.callback(pg.stop)
    return pg


def start_kafka(work_dir: Path, stack: ExitStack) -> KafkaBroker:
    """The jars come from .cache/kafka/lib (ORDERFLOW_KAFKA_LIB), fetched when missing."""
    ensure_kafka_jars()
    broker = KafkaBroker(work_dir / "kafka")
    broker.start()
    stack.callback(broker.stop)
    return broker


def wait_listening(
    port: int,
    timeout_s: float,
    failure: str,
    alive: Callable[[], bool] = lambda: True,
    interval: float = 0.05,
) -> None:
    """Until something accepts connections on the port; raises `failure` when the server
    died or the time ran out."""
    deadline = time.monotonic() + timeout_s
    while not accepts_connections(port, timeout=0.2):
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(interval)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
