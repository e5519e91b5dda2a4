"""Every process creates the tables it needs at start-up; when they all start together on
a fresh PostgreSQL database, none fails on another's DDL ("tuple concurrently updated",
duplicate types or relations)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from infra.bootstrap import read_side, write_side
from infra.kafka.relay import RelayPosition
from infra.settings import Settings
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.postgres
PROCESSES = 6
ROUNDS = 3


def start_up(settings: Settings) -> None:
    """What each service does before its first step: event store, read models, relay."""
    assert settings.database_url is not None
    write_side(settings).close()
    read_side(settings).close()
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        RelayPosition(conn)


def start_together(settings: Settings) -> list[BaseException]:
    start = threading.Barrier(PROCESSES)
    failures: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            start_up(settings)
        except BaseException as failure:
            failures.append(failure)

    threads = [threading.Thread(target=run) for _ in range(PROCESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_processes_starting_together_on_a_fresh_database_all_create_their_schema(
    postgres_server: PostgresServer, postgres_settings: Settings
) -> None:
    for n in range(ROUNDS):  # a race lost only now and then: several fresh databases
        name = f"schema_race_{n}"
        postgres_server.drop_database(name)
        settings = postgres_settings.model_copy(
            update={"database_url": postgres_server.create_database(name)}
        )
        try:
            assert start_together(settings) == []
        finally:
            postgres_server.drop_database(name)
