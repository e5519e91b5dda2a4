"""What a newcomer trips over at the command line: settings in the forms the README
promises (or a one-line error), tables that scripts can read, reports said to be off."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.observability.logging import configure_logging, remove_handler
from tests.conftest import TEST_SECRET

ORDERFLOW = str(Path(sys.executable).with_name("orderflow"))


def run(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    clean.pop("COLUMNS", None)  # as in a pipe or a CI log: no terminal width
    clean.update(ORDERFLOW_DATA_DIR=str(data_dir), **env)
    return subprocess.run([ORDERFLOW, *args], env=clean, capture_output=True, text=True, timeout=90)


@pytest.mark.parametrize("ttl", ["60", "60s", "15m", "2h", "PT15M", "900.5"])
def test_reservation_ttl_takes_every_documented_form(tmp_path: Path, ttl: str) -> None:
    done = run(tmp_path, "db", "init", ORDERFLOW_RESERVATION_TTL=ttl)
    assert done.returncode == 0, done.stderr


def test_bad_settings_are_one_line_each_with_exit_2(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        "db",
        "init",
        ORDERFLOW_RESERVATION_TTL="soon",
        ORDERFLOW_POSTGRES_POOL_SIZE="many",
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("orderflow: invalid")]
    assert len(lines) == 2, done.stderr
    ttl_line = next(line for line in lines if "ORDERFLOW_RESERVATION_TTL='soon'" in line)
    assert all(form in ttl_line for form in ("60", "15m", "PT15M"))
    assert any("ORDERFLOW_POSTGRES_POOL_SIZE='many'" in line for line in lines)
    assert not (tmp_path / "events.sqlite").exists()  # nothing was done


def test_a_secret_in_a_bad_setting_is_not_echoed(tmp_path: Path) -> None:
    done = run(tmp_path, "db", "init", ORDERFLOW_JWT_SECRET="short-but-secret")
    assert done.returncode == 2
    assert "ORDERFLOW_JWT_SECRET" in done.stderr
    assert "short-but-secret" not in done.stderr


@pytest.mark.postgres
def test_status_says_reporting_is_not_configured_and_speaks_json(
    tmp_path: Path, postgres_url: str
) -> None:
    production = {
        "ORDERFLOW_DATABASE_URL": postgres_url,
        "ORDERFLOW_JWT_SECRET": TEST_SECRET,
        "ORDERFLOW_PAYMENT_WEBHOOK_SECRET": "test-webhook-secret-0123",
    }
    assert run(tmp_path, "db", "init", **production).returncode == 0
    table = run(tmp_path, "projections", "status", **production)
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[1]
    for column in ("projection", "lag (events)", "lag (seconds)", "freshness (s)"):
        assert column in header  # not cut, though stdout is no terminal
    reporting_line = next(line for line in table.stdout.splitlines() if "reporting" in line)
    assert "not configured" in reporting_line

    listed = run(tmp_path, "projections", "status", "--json", **production)
    assert listed.returncode == 0, listed.stderr
    rows = {row["projection"]: row for row in json.loads(listed.stdout)}
    assert rows["reporting"]["position"].startswith("not configured")
    assert rows["orders"]["position"] == 0
    assert rows["orders"]["lag (events)"] == 0


def test_dead_letters_and_projections_list_speak_json(tmp_path: Path) -> None:
    listed = run(tmp_path, "projections", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {row["projection"] for row in json.loads(listed.stdout)}
    assert {"orders", "inventory", "customer_orders", "reservations", "reporting"} <= names
    letters = run(tmp_path, "dead-letters", "list", "--json")
    assert letters.returncode == 0, letters.stderr
    assert json.loads(letters.stdout) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("service", "stream", "log_format", "human"),
    [
        ("dev", _Terminal(), "auto", True),
        ("dev", io.StringIO(), "auto", False),  # dev piped to a file: JSON
        ("write-api", _Terminal(), "auto", False),  # production services: JSON
        ("write-api", io.StringIO(), "console", True),
        ("dev", _Terminal(), "json", False),
    ],
)
def test_logs_are_rendered_for_people_only_at_devs_terminal(
    service: str, stream: io.StringIO, log_format: str, human: bool
) -> None:
    handler = configure_logging(service, "INFO", stream, log_format=log_format)
    try:
        logging.getLogger("orderflow.test").info("hello", extra={"order_id": "o-1"})
    finally:
        remove_handler(handler)
    line = stream.getvalue().strip().splitlines()[-1]
    if human:
        assert "hello" in line
        assert "order_id" in line
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    else:
        assert json.loads(line)["event"] == "hello"
