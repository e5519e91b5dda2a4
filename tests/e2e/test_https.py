"""Both APIs serve HTTPS when given a certificate and key: `orderflow dev` with a
self-signed CA's certificate made in the test, called over TLS with that CA trusted."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest

from tests.harness.certs import make_tls_files
from tests.harness.ports import free_port

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))


def _wait_for(url: str, context: ssl.SSLContext, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"orderflow dev exited:\n{process.communicate()[0]}")
        try:
            if httpx2.get(url, verify=context, timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer over TLS within 60 s")


def test_both_apis_answer_over_tls_only(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    write_port, read_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_TLS_CERTFILE=str(tls.cert),
        ORDERFLOW_TLS_KEYFILE=str(tls.key),
        ORDERFLOW_LOG_FORMAT="json",
    )
    process = subprocess.Popen(
        [
            ORDERFLOW,
            "dev",
            "--data-dir",
            str(tmp_path / "data"),
            "--write-port",
            str(write_port),
            "--read-port",
            str(read_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    trusted = ssl.create_default_context(cafile=str(tls.ca_cert))
    try:
        for port in (write_port, read_port):
            _wait_for(f"https://127.0.0.1:{port}/health", trusted, process)
            ready = httpx2.get(f"https://localhost:{port}/ready", verify=trusted, timeout=5)
            assert ready.status_code == 200
            # the certificate is checked: a client that does not trust the CA refuses it
            with pytest.raises(httpx2.TransportError):
                httpx2.get(f"https://127.0.0.1:{port}/health", timeout=5)
            # and nothing answers in plain HTTP on that port
            with pytest.raises(httpx2.TransportError):
                httpx2.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"write API: https://127.0.0.1:{write_port}" in output
