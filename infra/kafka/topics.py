"""Topic names, creation, and the envelope's form on the wire."""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from commands.trace_context import current_traceparent
from infra.observability.tracing import HEADER
from infra.settings import Settings
from schemas.envelope import AggregateType, Envelope

log = logging.getLogger(__name__)
AGGREGATE_TYPES: tuple[AggregateType, ...] = ("order", "inventory")


def topic_for(settings: Settings, aggregate_type: str) -> str:
    return f"{settings.kafka_topic_prefix}.{aggregate_type}"


def all_topics(settings: Settings) -> list[str]:
    return [topic_for(settings, kind) for kind in AGGREGATE_TYPES]


def bootstrap_servers(settings: Settings) -> list[str]:
    if not settings.kafka_bootstrap_servers:
        raise RuntimeError("ORDERFLOW_KAFKA_BOOTSTRAP_SERVERS is not set")
    return settings.kafka_bootstrap_servers.split(",")


def kafka_connection(settings: Settings) -> dict[str, Any]:
    """What every Kafka client of ours connects with: the brokers, and the transport
    security configured (TLS with a CA, client certificates, SASL user and password)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        config.update(
            ssl_cafile=settings.kafka_ssl_cafile and str(settings.kafka_ssl_cafile),
            ssl_certfile=settings.kafka_ssl_certfile and str(settings.kafka_ssl_certfile),
            ssl_keyfile=settings.kafka_ssl_keyfile and str(settings.kafka_ssl_keyfile),
            ssl_check_hostname=settings.kafka_ssl_check_hostname,
        )
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        config.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return config


def ensure_topics(settings: Settings) -> None:
    if not settings.kafka_create_topics:
        return
    admin = KafkaAdminClient(**kafka_connection(settings), client_id="orderflow-admin")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, settings.kafka_partitions, settings.kafka_replication_factor)
            for name in all_topics(settings)
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
                log.info("created topics %s", [t.name for t in missing])
            except TopicAlreadyExistsError:
                pass  # another process won the race
    finally:
        admin.close()


def encode(envelope: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key (per-aggregate order), value (the JSON envelope) and headers."""
    headers = [
        ("type", envelope.type.encode()),
        ("event_id", str(envelope.event_id).encode()),
        ("position", str(envelope.position).encode()),
    ]
    if envelope.correlation_id:
        headers.append(("correlation_id", envelope.correlation_id.encode()))
    if traceparent := current_traceparent() or envelope.traceparent:
        headers.append((HEADER, traceparent.encode()))  # the relay's span, when traced
    return str(envelope.aggregate_id).encode(), envelope.model_dump_json().encode(), headers


def decode(value: bytes) -> Envelope:
    return Envelope.model_validate_json(value)
