"""Every setting, read once from ORDERFLOW_* environment variables into one typed object."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

INVENTORY_SNAPSHOT_DEFAULT = 200


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
        default=None,
        ge=0,
        description="Snapshot an aggregate every N events (off when unset or 0); the "
        "per-type settings below override it.",
    )
    snapshot_interval_order: int | None = Field(
        default=None, ge=0, description="Orders: every N events (0: never); default as above."
    )
    snapshot_interval_inventory: int | None = Field(
        default=None,
        ge=0,
        description="Inventory items: every N events (0: never); default as above, or "
        f"{INVENTORY_SNAPSHOT_DEFAULT} when neither is set (a hot SKU's stream grows fast).",
    )
    reservation_ttl: timedelta = Field(
        default=timedelta(minutes=15),
        description="Unpaid reservations expire after this (seconds, or ISO 8601 like PT15M).",
    )
    worker_interval_seconds: float = Field(default=1.0, gt=0)
    payment_webhook_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="Shared secret of the payment provider's signed webhooks. Required with a "
        "database_url; embedded mode generates one under data_dir on first use.",
    )
    payment_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    command_attempts: int = Field(default=30, ge=1, description="Tries per command on conflicts.")
    write_workers: int = Field(
        default=1, ge=1, description="Processes serving the write API (`write-api --workers`)."
    )
    group_commit: bool = Field(
        default=True,
        description="One appender per process commits the commands that arrive together in "
        "one transaction; off: each command in its own.",
    )
    group_commit_max_batch: int = Field(default=256, ge=1, le=10_000)
    aggregate_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Aggregates each write process keeps in memory, brought up to date by "
        "reading only newer events; 0: none (every command replays from the store).",
    )
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
    rate_limit: str | None = Field(
        default=None,
        description="Requests per principal (per client IP when unauthenticated) on each API, "
        'like "120/minute" or "10/second"; unset or "0" means no limit.',
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The relay, projectors and worker expose /metrics on this port.",
    )
    host: str = "127.0.0.1"
    write_port: int = 8000
    read_port: int = 8001

    @property
    def snapshot_intervals(self) -> dict[str, int]:
        """Aggregate type ("order", "inventory") -> N, for the types snapshotted every N."""
        found = {}
        for kind, own in (
            ("order", self.snapshot_interval_order),
            ("inventory", self.snapshot_interval_inventory),
        ):
            interval = self.snapshot_interval if own is None else own
            if interval is None and kind == "inventory":
                interval = INVENTORY_SNAPSHOT_DEFAULT
            if interval:
                found[kind] = interval
        return found

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
        return self._secret(self.jwt_secret, "ORDERFLOW_JWT_SECRET", "jwt-secret")

    @cached_property
    def webhook_secret(self) -> str:
        return self._secret(
            self.payment_webhook_secret, "ORDERFLOW_PAYMENT_WEBHOOK_SECRET", "webhook-secret"
        )

    def _secret(self, configured: SecretStr | None, variable: str, file_name: str) -> str:
        if configured is not None:
            return configured.get_secret_value()
        if not self.embedded:
            raise RuntimeError(f"{variable} must be set when ORDERFLOW_DATABASE_URL is")
        return _local_secret(self.data_dir / file_name)


def _local_secret(path: Path) -> str:
    """A per-installation secret for embedded mode, so no shared default ever signs tokens."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()
