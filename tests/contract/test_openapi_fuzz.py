"""Schemathesis fuzzes both APIs of a running `orderflow dev --demo` from their own OpenAPI
descriptions, in every phase (examples, coverage, fuzzing, stateful), with every check:
no server error (the documented 503 projection-lag aside), no undocumented status code or
media type, no response off its schema, no schema-valid request refused and no invalid
one accepted. Bounded: a fixed seed and a few examples per operation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.harness.ports import free_port

BIN = Path(sys.executable).parent
HERE = Path(__file__).parent
WEBHOOK_SECRET = "contract-webhook-secret-0123"
MAX_EXAMPLES = "10"
SEED = "20261129"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str, str]]:
    """`orderflow dev --demo`; yields its environment and the two APIs' addresses."""
    data = tmp_path_factory.mktemp("contract")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_DATA_DIR=str(data),
        ORDERFLOW_PAYMENT_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ORDERFLOW_LOG_FORMAT="json",
    )
    write, read = free_port(), free_port()
    process = subprocess.Popen(
        [
            str(BIN / "orderflow"),
            "dev",
            "--demo",
            "--write-port",
            str(write),
            "--read-port",
            str(read),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data / "dev.log").open("wb"),
    )
    urls = (f"http://127.0.0.1:{write}", f"http://127.0.0.1:{read}")
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                assert process.poll() is None, (data / "dev.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "orderflow dev did not start"
                try:
                    if httpx2.get(f"{url}/ready", timeout=2).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                time.sleep(0.2)
        yield env, *urls
    finally:
        process.terminate()
        process.wait(timeout=30)


def _token(env: dict[str, str]) -> str:
    minted = subprocess.run(
        [str(BIN / "orderflow"), "auth", "token", "--sub", "fuzzer", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip()


@pytest.mark.parametrize("api", ["write", "read"])
def test_the_api_keeps_every_promise_of_its_openapi_description(
    dev: tuple[dict[str, str], str, str], api: str
) -> None:
    env, write, read = dev
    url = write if api == "write" else read
    repo = str(HERE.parents[1])
    fuzz_env = {
        **env,
        "ORDERFLOW_FUZZ_TOKEN": _token(env),
        "SCHEMATHESIS_HOOKS": "tests.contract.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [
            str(BIN / "st"),
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            "--no-color",
        ],
        env=fuzz_env,
        capture_output=True,
        text=True,
        timeout=540,
        cwd=repo,
    )
    print(run.stdout[-4000:])  # warnings (a skipped operation, say) show with -s or on failure
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "failure" not in summary, run.stdout[-6000:]
    assert "error" not in summary, run.stdout[-6000:]
