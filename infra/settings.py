"""Every setting, read once from ORDERFLOW_* environment variables into one typed object."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_", frozen=True)

    data_dir: Path = Field(
        default=Path(".orderflow"), description="Embedded mode keeps all its files here."
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/dbname; unset means embedded SQLite.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="Where PostgreSQL read models live; defaults to database_url.",
    )
    postgres_pool_size: int = Field(default=10, ge=1)
    jwt_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HS256 secret for bearer tokens. Required with a database_url; embedded "
        "mode generates one under data_dir on first use.",
    )
    jwt_ttl_seconds: int = Field(default=3600, ge=1)
    snapshot_interval: int | None = Field(
        default=None, ge=1, description="Snapshot an aggregate every N events (off when unset)."
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    command_attempts: int = Field(default=30, ge=1, description="Tries per command on conflicts.")
    kafka_bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; the relay and projectors need it."
    )
    kafka_topic_prefix: str = Field(
        default="orderflow", description="Topics are <prefix>.order and <prefix>.inventory."
    )
    kafka_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_create_topics: bool = True
    projector_group: str = "orderflow-projectors"
    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://user:password@host:8123/database: the ClickHouse server of the "
        "reporting read models; unset means chDB (in-process ClickHouse) under data_dir.",
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    host: str = "127.0.0.1"
    write_port: int = 8000
    read_port: int = 8001

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "events.sqlite"

    @property
    def read_sqlite_path(self) -> Path:
        return self.data_dir / "read.sqlite"

    @property
    def chdb_dir(self) -> Path:
        return self.data_dir / "chdb"

    @property
    def read_models_url(self) -> str | None:
        return self.read_database_url or self.database_url

    @cached_property
    def token_secret(self) -> str:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if not self.embedded:
            raise RuntimeError("ORDERFLOW_JWT_SECRET must be set when ORDERFLOW_DATABASE_URL is")
        return _local_secret(self.data_dir / "jwt-secret")


def _local_secret(path: Path) -> str:
    """A per-installation secret for embedded mode, so no shared default ever signs tokens."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()
