"""ORDERFLOW_DATABASE_URL's libpq parameters (sslmode, sslrootcert, …) reach every
connection the event store makes: checked against a PostgreSQL that serves TLS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from infra.eventstore.event_store import library_env, open_event_store
from infra.eventstore.postgres_factory import CONNECTION_PARAMETERS
from infra.eventstore.postgres_recorder import PostgresRecorder
from infra.settings import Settings
from tests.conftest import TEST_SECRET
from tests.harness.certs import TlsFiles, make_tls_files
from tests.harness.postgres import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_postgres(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("postgres-tls"), tls=tls_files)
    server.start()
    yield server
    server.stop()


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        jwt_secret=TEST_SECRET,
        payment_webhook_secret="test-webhook-secret-0123",
    )


def test_the_url_query_is_handed_to_the_library(tmp_path: Path) -> None:
    url = "postgresql://u:p@db.example:5433/of?sslmode=verify-full&sslrootcert=/etc/ca.pem"
    env = library_env(_settings(tmp_path, url))
    assert env[CONNECTION_PARAMETERS] == "sslmode=verify-full&sslrootcert=/etc/ca.pem"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == (
        "db.example",
        "5433",
        "of",
    )


def _uses_tls(tmp_path: Path, url: str) -> bool:
    app = open_event_store(_settings(tmp_path, url))
    try:
        recorder = app.orderflow_recorder
        assert isinstance(recorder, PostgresRecorder)
        with recorder.datastore.get_connection() as conn:
            row = conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
        assert row is not None
        return bool(row["ssl"])
    finally:
        app.close()


def test_sslmode_is_honoured(tmp_path: Path, tls_postgres: PostgresServer) -> None:
    url = tls_postgres.create_database("tls_modes")
    assert _uses_tls(tmp_path, f"{url}?sslmode=require") is True
    # libpq's default (prefer) would use TLS here: only a kept parameter turns it off
    assert _uses_tls(tmp_path, f"{url}?sslmode=disable") is False


def test_verify_full_checks_the_certificate_against_the_given_ca(
    tmp_path: Path, tls_postgres: PostgresServer, tls_files: TlsFiles
) -> None:
    trusted = tls_postgres.create_database("tls_verified")
    good = open_event_store(
        _settings(tmp_path, f"{trusted}?sslmode=verify-full&sslrootcert={tls_files.ca_cert}")
    )
    good.close()
    stranger = make_tls_files(tmp_path / "another-ca")
    url = f"{trusted}?sslmode=verify-full&sslrootcert={stranger.ca_cert}"
    # the same server and database: only the CA differs, so only verification can refuse
    with pytest.raises(OperationalError):
        open_event_store(_settings(tmp_path, url))
