"""One trace from the HTTP request through the command, the append, the relay (trace
context in the Kafka headers) to the projector's write; the trace id in log lines.

Real PostgreSQL and Kafka; spans collected by OpenTelemetry's in-memory exporter. The
process-wide tracer provider is installed once, with a sampler that records only while a
test here runs, so the rest of the suite stays untraced."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from infra.bootstrap import read_side, write_side
from infra.eventstore.event_log import EventLog
from infra.http.auth import mint_token
from infra.http.webhook_signature import sign
from infra.kafka.consumer import KafkaFeed
from infra.kafka.relay import Relay
from infra.observability import tracing
from infra.settings import Settings
from projections import queries
from schemas.auth import Role
from tests.harness.kafka import KafkaBroker
from tests.ops.helpers import captured_logs
from write_api.app import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


class OnlyWhileOn(Sampler):
    """Records spans only while a test of this module runs."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP)

    def get_description(self) -> str:
        return "OnlyWhileOn"


SAMPLER = OnlyWhileOn()
EXPORTER = InMemorySpanExporter()
_installed: list[bool] = []


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    if not _installed:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(
            sampler=SAMPLER, resource=Resource.create({"service.name": "orderflow-test"})
        )
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
        _installed.append(True)
    monkeypatch.setattr(tracing, "_enabled", True)
    EXPORTER.clear()
    SAMPLER.on = True
    yield EXPORTER
    SAMPLER.on = False
    EXPORTER.clear()


def _named(found: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matches = [s for s in found if s.name == name]
    assert matches, f"no span {name!r} among {sorted({s.name for s in found})}"
    return matches[0]


def _ancestors(span: ReadableSpan, found: Sequence[ReadableSpan]) -> list[int]:
    by_id = {s.context.span_id: s for s in found}
    chain, parent = [], _parent_of(span)
    while parent is not None:
        chain.append(parent)
        parent = _parent_of(by_id[parent]) if parent in by_id else None
    return chain


def _parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_one_trace_from_the_request_to_the_projectors_write(
    postgres_settings: Settings, kafka_broker: KafkaBroker, spans: InMemorySpanExporter
) -> None:
    unique = uuid.uuid4().hex[:8]
    settings = postgres_settings.model_copy(
        update={
            "kafka_bootstrap_servers": kafka_broker.bootstrap_servers,
            "kafka_topic_prefix": f"traced-{unique}",
            "projector_group": f"traced-{unique}",
        }
    )
    writes, reads = write_side(settings), read_side(settings)
    relay = Relay(settings, EventLog(writes.app))
    projector = KafkaFeed(settings, reads.runner)
    threads = [threading.Thread(target=t.run, daemon=True) for t in (relay, projector)]
    for thread in threads:
        thread.start()
    headers = {
        "Authorization": f"Bearer {mint_token(settings.token_secret, 'ops', Role.ADMIN, 600)}"
    }
    try:
        with TestClient(create_app(writes)) as client:
            item = {"sku": "TR-1", "name": "traced", "unit_price_cents": 700, "on_hand": 5}
            assert client.post("/inventory", json=item, headers=headers).status_code == 201
            placed = client.post(
                "/orders",
                json={"customer_id": "c-1", "lines": [{"sku": "TR-1", "quantity": 2}]},
                headers=headers,
            )
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["order_id"]
            deadline = time.monotonic() + 60
            while True:
                with reads.store.read() as tx:
                    if queries.order(tx, order_id) is not None:
                        break
                assert time.monotonic() < deadline, "the order never reached the read model"
                time.sleep(0.1)
            while not any(s.name == "project order.created" for s in spans.get_finished_spans()):
                # the projector ends its spans once Kafka took the offsets
                assert time.monotonic() < deadline, "the projector's span never ended"
                time.sleep(0.1)
            found = spans.get_finished_spans()

            request = _named(found, "POST /orders")
            assert request.kind is SpanKind.SERVER
            trace_id = request.context.trace_id
            in_trace = [s for s in found if s.context.trace_id == trace_id]
            command = _named(in_trace, "command PlaceOrder")
            publish = _named(in_trace, "publish order.created")
            # the append: in the command's trace (one at a time), or in a group commit's
            # span that links every command it carried
            group = [
                s
                for s in found
                if s.name == "group commit"
                and any(link.context.span_id == command.context.span_id for link in s.links)
            ]
            parents = {command.context.span_id, *(g.context.span_id for g in group)}
            assert any(s.name == "append" and _parent_of(s) in parents for s in found)
            project = _named(in_trace, "project order.created")
            assert request.context.span_id in _ancestors(command, in_trace)  # FastAPI's span
            assert _parent_of(publish) == command.context.span_id  # stored with the events
            assert publish.kind is SpanKind.PRODUCER
            assert _parent_of(project) == publish.context.span_id  # through the Kafka header
            assert project.kind is SpanKind.CONSUMER
            projected_at = dict(project.attributes or {})["orderflow.position"]
            assert isinstance(projected_at, int)
            assert 0 < projected_at <= placed.json()["position"]

            # a log line written while the request is handled carries its trace id
            with captured_logs("write-api") as logs:
                body = (
                    b'{"id": "evt_traced", "type": "payment_intent.payment_failed", "data": '
                    b'{"object": {"id": "pi_x", "amount": 1400, "currency": "eur", '
                    b'"metadata": {"order_id": "' + order_id.encode() + b'"}}}}'
                )
                cancelled = client.post(
                    f"/orders/{order_id}/cancellation", json={"reason": "t"}, headers=headers
                )
                assert cancelled.status_code == 200, cancelled.text
                refused = client.post(
                    "/webhooks/payments",
                    content=body,
                    headers={
                        "Payment-Signature": sign(settings.webhook_secret, int(time.time()), body),
                        "Content-Type": "application/json",
                    },
                )
                assert refused.json()["status"] == "refused"
            webhook = _named(spans.get_finished_spans(), "POST /webhooks/payments")
            warning = next(e for e in logs.lines() if "refused" in str(e.get("event")))
            assert warning["trace_id"] == format(webhook.context.trace_id, "032x")
    finally:
        relay.stop()
        projector.stop()
        for thread in threads:
            thread.join(timeout=15)
        writes.close()
        reads.close()
