"""The relay and the projectors reach a broker over TLS, and over TLS with SASL: against a
harness broker with SSL and SASL_SSL listeners whose certificate a test CA signed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError
from pydantic import SecretStr

from commands.ports import CommandContext
from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.kafka.topics import kafka_connection
from infra.settings import Settings
from projections import queries
from schemas.commands import RegisterItem
from tests.harness.certs import TlsFiles, make_tls_files
from tests.harness.kafka import SASL_PASSWORD, SASL_USER, KafkaBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("kafka-tls"))


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka-secure"), tls=tls)
    broker.start()
    yield broker
    broker.stop()


def _secure(settings: Settings, broker: KafkaBroker, tls: TlsFiles, protocol: str) -> Settings:
    port = broker.ssl_port if protocol == "SSL" else broker.sasl_ssl_port
    unique = uuid.uuid4().hex[:8]
    return settings.model_copy(
        update={
            "kafka_bootstrap_servers": f"127.0.0.1:{port}",
            "kafka_security_protocol": protocol,
            "kafka_ssl_cafile": tls.ca_cert,
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": SASL_USER,
            "kafka_sasl_password": SecretStr(SASL_PASSWORD),
            "kafka_topic_prefix": f"secure-{unique}",
            "projector_group": f"secure-{unique}",
        }
    )


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_relay_and_projector_work_over_a_secured_listener(
    postgres_settings: Settings, secure_broker: KafkaBroker, tls: TlsFiles, protocol: str
) -> None:
    settings = _secure(postgres_settings, secure_broker, tls, protocol)
    writes, reads = write_side(settings), read_side(settings)
    relay = Relay(settings, EventLog(writes.app))
    projector = KafkaFeed(settings, reads.runner)
    threads = [threading.Thread(target=t.run, daemon=True) for t in (relay, projector)]
    for thread in threads:
        thread.start()
    try:
        context = CommandContext("test", "kafka-security")
        for n in range(3):
            writes.bus.handle(
                RegisterItem(sku=f"SEC-{n}", name="secured", unit_price_cents=100, on_hand=n + 1),
                context,
            )
        head = EventLog(writes.app).head()
        deadline = time.monotonic() + 60
        while reads.runner.positions()["inventory"] < head:
            assert time.monotonic() < deadline, "the projector never caught up"
            time.sleep(0.1)
        with reads.store.read() as tx:
            on_hand = {n: queries.item(tx, f"SEC-{n}") for n in range(3)}
        # by hand: SKU n was registered with n + 1 on hand
        assert {n: row and row["on_hand"] for n, row in on_hand.items()} == {0: 1, 1: 2, 2: 3}
    finally:
        relay.stop()
        projector.stop()
        for thread in threads:
            thread.join(timeout=15)
        writes.close()
        reads.close()


def _delivers(settings: Settings) -> None:
    """One record through a producer built as the relay builds its own; raises on failure.
    The API version is given, so the constructor does not probe the broker: the send
    meets the TLS handshake and SASL authentication within its short deadline."""
    producer = KafkaProducer(
        **kafka_connection(settings), api_version=(3, 9), max_block_ms=8000, acks="all"
    )
    try:
        producer.send(f"{settings.kafka_topic_prefix}.probe", b"x").get(timeout=8)
    finally:
        producer.close(timeout=1)


def test_a_wrong_sasl_password_or_an_untrusted_ca_is_refused(
    postgres_settings: Settings, secure_broker: KafkaBroker, tls: TlsFiles, tmp_path: Path
) -> None:
    good = _secure(postgres_settings, secure_broker, tls, "SASL_SSL")
    _delivers(good)  # the right password and CA get through
    wrong_password = good.model_copy(update={"kafka_sasl_password": SecretStr("not-it")})
    with pytest.raises(KafkaError):
        _delivers(wrong_password)
    stranger = make_tls_files(tmp_path / "other-ca")
    untrusted = good.model_copy(update={"kafka_ssl_cafile": stranger.ca_cert})
    with pytest.raises(KafkaError):
        _delivers(untrusted)
