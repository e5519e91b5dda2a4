"""Every setting, read once from ORDERFLOW_* environment variables into one typed object.

Longer than our modules usually are, on purpose: one class with every setting, each with
its type, default and description, is the one page an operator reads to configure
OrderFlow (and what `docs/` and the settings errors name); split by component it would be
several pages that must agree on the shared ones (the database URL, the data directory)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ORDERFLOW_"
DURATION_FORMS = "seconds (60), with a unit (90s, 15m, 2h, 1d), or ISO 8601 (PT15M)"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WITH_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)


def _duration(value: object) -> object:
    """Environment strings like "60" or "15m" as timedeltas; anything else (ISO 8601,
    numbers, timedeltas) is left to pydantic."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        pass
    matched = _WITH_UNIT.match(text)
    if matched:
        return timedelta(seconds=float(matched[1]) * _UNIT_SECONDS[matched[2].lower()])
    return text


Duration = Annotated[timedelta, BeforeValidator(_duration)]


INVENTORY_SNAPSHOT_DEFAULT = 200


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True)

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
    jwt_jwks_url: str | None = Field(
        default=None,
        description="The identity provider's JWKS URL (https://…/.well-known/jwks.json): "
        "bearer tokens are then RS256/ES256 tokens of that provider, not HS256.",
    )
    jwt_jwks_file: Path | None = Field(
        default=None, description="A JWKS file, instead of a URL (read again on an unknown kid)."
    )
    jwt_issuer: str | None = Field(
        default=None, description="The `iss` every provider token must carry (with a JWKS)."
    )
    jwt_audience: str | None = Field(
        default=None, description="The `aud` every provider token must carry (with a JWKS)."
    )
    jwt_role_claim: str = Field(
        default="role",
        description="The claim naming the OrderFlow role: a name, or a dotted path such as "
        "realm_access.roles; a string or a list (the most powerful role named wins).",
    )
    jwt_leeway_seconds: float = Field(
        default=30, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    jwt_jwks_cooldown_seconds: float = Field(
        default=5,
        ge=0,
        description="At most one JWKS refresh per this many seconds on an unknown kid.",
    )
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
    reservation_ttl: Duration = Field(
        default=timedelta(minutes=15),
        description=f"Unpaid reservations expire after this: {DURATION_FORMS}.",
    )
    worker_interval_seconds: float = Field(default=1.0, gt=0)
    idempotency_window: timedelta = Field(
        default=timedelta(hours=24),
        description="Stored answers of Idempotency-Keys (and of webhook event ids) are kept "
        "this long, then the worker purges them and the same key is a new request (seconds, "
        "or ISO 8601 like PT24H).",
    )
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
    write_routing: bool = Field(
        default=True,
        description="With several write processes, commands on a SKU whose batches another "
        "process keeps overtaking go to one process, the SKU's owner (ADR 0028).",
    )
    write_routing_after: int = Field(
        default=3,
        ge=0,
        description="Batches overtaken on a SKU, each within 10 s of the last, that make its "
        "commands go to its owner process; 0: every SKU's commands do.",
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
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How the relay and projectors reach the brokers."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA certificate(s) (PEM) that signed the brokers' certificates."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require mTLS."
    )
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Its private key (PEM).")
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="Check that a broker's certificate names its host."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    projector_group: str = "orderflow-projectors"
    clickhouse_url: str | None = Field(
        default=None,
        description="http(s)://user:password@host:8123/database: the ClickHouse server of the "
        "reporting read models; unset means chDB (in-process ClickHouse) under data_dir.",
    )
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_linger_ms: float = Field(
        default=4.0,
        ge=0,
        le=1000,
        description="How long the relay, woken by a commit, waits for more before it reads: "
        "fewer, larger batches (a read, a produce request, a projector batch each) for at "
        "most this much latency; 0 reads at once.",
    )
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
    tracing: Literal["off", "console", "otlp"] = Field(
        default="off",
        description="OpenTelemetry traces: off, console (stdout), or otlp (OTLP over HTTP).",
    )
    tracing_endpoint: str | None = Field(
        default=None,
        description="The OTLP/HTTP traces endpoint, like http://collector:4318/v1/traces; "
        "default: OpenTelemetry's (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else localhost:4318).",
    )
    cors_origins: str | None = Field(
        default=None,
        description="Comma-separated origins allowed to call the APIs from a browser, like "
        "https://shop.example.com; unset means CORS is off.",
    )
    tls_certfile: Path | None = Field(
        default=None,
        description="PEM certificate (chain) for HTTPS on both APIs; with tls_keyfile.",
    )
    tls_keyfile: Path | None = Field(default=None, description="PEM private key of tls_certfile.")
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key that signs audit checkpoints (PEM, or base64 of 32 "
        "bytes). Needed to take checkpoints with a database_url; embedded mode generates one "
        "under data_dir on first use.",
    )
    audit_public_key: str | None = Field(
        default=None,
        description="The checkpoints' Ed25519 public key (PEM, or base64 of 32 bytes), for "
        "verifiers that do not hold the private key; default: derived from the signing key.",
    )
    audit_checkpoint_dir: Path | None = Field(
        default=None, description="Where checkpoints are kept; default <data_dir>/checkpoints."
    )
    audit_checkpoint_interval: Duration = Field(
        default=timedelta(hours=1),
        description=f"The worker signs a checkpoint this often ({DURATION_FORMS}); 0: never.",
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

    @model_validator(mode="after")
    def _identity_provider_complete(self) -> Settings:
        if (self.jwt_jwks_url or self.jwt_jwks_file) and not (
            self.jwt_issuer and self.jwt_audience
        ):
            raise ValueError(
                "ORDERFLOW_JWT_ISSUER and ORDERFLOW_JWT_AUDIENCE must be set with a JWKS"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("ORDERFLOW_TLS_CERTFILE and ORDERFLOW_TLS_KEYFILE go together")
        return self

    @property
    def identity_provider(self) -> bool:
        return bool(self.jwt_jwks_url or self.jwt_jwks_file)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in (self.cors_origins or "").split(",") if o.strip()]

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

    @cached_property
    def checkpoint_dir(self) -> Path:
        return self.audit_checkpoint_dir or self.data_dir / "checkpoints"

    @cached_property
    def checkpoint_signing_key(self) -> str:
        return self._secret(
            self.audit_signing_key, "ORDERFLOW_AUDIT_SIGNING_KEY", "audit-signing-key"
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


class SettingsError(Exception):
    """Settings that do not validate, told one line per variable for a person to fix."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings() -> Settings:
    """Settings from the environment, or a SettingsError naming each bad variable, the
    value it has and the forms it accepts (no traceback for a typo)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError([_explain(error) for error in exc.errors()]) from None


def _explain(error: object) -> str:
    assert isinstance(error, dict)
    location = error.get("loc") or ("?",)
    name = str(location[0])
    variable = f"{ENV_PREFIX}{name.upper()}"
    field = Settings.model_fields.get(name)
    value = error.get("input")
    hidden = any(word in name for word in ("secret", "password", "url"))
    shown = "" if hidden or field is None else f"={value!r}"
    line = f"{variable}{shown}: {error.get('msg', 'invalid')}"
    if field is not None and field.description:
        line += f" (expected: {field.description})"
    return line
