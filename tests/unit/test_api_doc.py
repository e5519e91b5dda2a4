"""docs/api.md is the contract: every route of both OpenAPI descriptions, every `orderflow`
command with its options and arguments, and every event type appear in it. The oracles
are the running code's own registries (FastAPI's descriptions, typer's command tree, the
payload models), walked here rather than listed by hand, so a route or a command added
without its line in the contract fails this test."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from infra.bootstrap import ReadSide, read_side, write_side
from infra.cli import app as cli
from infra.settings import Settings
from read_api.app import create_app as create_read_app
from schemas.events import PAYLOADS
from write_api.app import create_app as create_write_app

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def reports_stand_in() -> Any:
    """The read API describes its report routes only with a reporting runner. Building the
    description calls none of its methods, so an instance that was never set up (no
    ClickHouse engine opened in this process) serves; its class is read from ReadSide."""
    runner_class = next(
        kind
        for kind in typing.get_args(typing.get_type_hints(ReadSide)["reporting"])
        if kind is not type(None)
    )
    return runner_class.__new__(runner_class)


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """`METHOD /path` of every operation both APIs describe, reports included."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("api-doc"),
        database_url=None,
        read_database_url=None,
        clickhouse_url=None,
        jwt_secret="api-doc-secret-of-thirty-two-bytes",
        payment_webhook_secret="api-doc-webhook-secret",
    )
    writes, reads = write_side(settings), read_side(settings, reports=False)
    reads.reporting = reports_stand_in()
    try:
        found = []
        for api in (create_write_app(writes), create_read_app(reads)):
            for path, operations in api.openapi()["paths"].items():
                found += [f"{method.upper()} {path}" for method in operations]
        yield found
    finally:
        reads.reporting = None
        reads.close()
        writes.close()


def cli_commands() -> list[tuple[str, Any]]:
    """(`orderflow <path>`, command) for every leaf of the typer tree, groups walked down."""
    found = []

    def walk(command: Any, path: list[str]) -> None:
        subcommands = getattr(command, "commands", None)  # a group
        if subcommands is None:
            found.append((" ".join(["orderflow", *path]), command))
            return
        for name, sub in subcommands.items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli), [])
    return found


def contract() -> str:
    return CONTRACT.read_text()


def test_every_route_of_both_apis_is_in_the_contract(routes: list[str]) -> None:
    assert len(routes) >= 30  # both apps, reports included: the walk itself works
    assert {"GET /reports/order-funnel", "POST /webhooks/payments"} <= set(routes)
    text = contract()
    missing = [route for route in routes if f"| {route} |" not in text]
    assert not missing, f"routes missing from docs/api.md: {missing}"


def test_every_cli_command_is_in_the_contract_with_its_options() -> None:
    commands = cli_commands()
    assert len(commands) >= 25
    assert "orderflow audit export" in dict(commands)
    lines = contract().splitlines()
    missing = []
    for name, command in commands:
        rows = [line for line in lines if f"`{name}`" in line]
        if not rows:
            missing.append(name)
            continue
        for parameter in command.params:
            if parameter.param_type_name == "option":
                words = [o for o in parameter.opts if o.startswith("--")]
            else:
                words = [parameter.name.upper()]
            if words and not any(w in row for w in words for row in rows):
                missing.append(f"{name} {words[0]}")
    assert not missing, f"commands or options missing from docs/api.md: {missing}"


def test_every_event_type_is_in_the_contract() -> None:
    text = contract()
    missing = [kind for kind in PAYLOADS if f"`{kind}`" not in text]
    assert not missing, f"event types missing from docs/api.md: {missing}"
