"""Helpers of the operations tests: problem answers, Prometheus text, captured JSON logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from httpx2 import Response
from prometheus_client.parser import text_string_to_metric_families

from infra.observability.logging import configure_logging, remove_handler

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def is_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def label_values(found: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls) in found if n == name and label in dict(ls)}


@dataclass
class CapturedLogs:
    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        parsed = []
        for line in self.text.splitlines():
            entry = json.loads(line)  # every line is one JSON object
            assert isinstance(entry, dict)
            parsed.append(entry)
        return parsed


@contextmanager
def captured_logs(service: str) -> Iterator[CapturedLogs]:
    """The production JSON log configuration, writing to a buffer, undone afterwards."""
    root = logging.getLogger()
    level = root.level
    captured = CapturedLogs()
    handler = configure_logging(service, "INFO", captured.stream)
    try:
        yield captured
    finally:
        remove_handler(handler)
        root.setLevel(level)
