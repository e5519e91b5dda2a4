"""Structured logs: one JSON object per line, on stderr, for every process.

Both our own loggers (stdlib `logging.getLogger(__name__)`, with `extra=` fields) and the
libraries' (uvicorn, kafka-python, eventsourcing) go through the same structlog chain:
level, timestamp (UTC, ISO 8601), service, logger, event, correlation_id (from the
request's contextvar, when one is set), any extra fields; then secrets are redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from infra.http.correlation import correlation_id
from infra.observability.tracing import log_fields

REDACTED = "[REDACTED]"
_HANDLER_NAME = "orderflow-json"
# keys whose values are never logged, whatever they hold
_SECRET_KEYS = re.compile(r"authorization|token|secret|password|passwd|cookie", re.IGNORECASE)
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")

_secrets: set[str] = set()


def add_secrets(*values: str | None) -> None:
    """Values that must never appear in a log line (the JWT and webhook secrets)."""
    _secrets.update(v for v in values if v and len(v) >= 8)


def protect_settings(settings: Any) -> None:
    """Registers the secrets a Settings object holds: configured ones, and those embedded
    mode generated under its data dir (read only if present: nothing is created here)."""
    for name in (
        "jwt_secret",
        "payment_webhook_secret",
        "kafka_sasl_password",
        "audit_signing_key",
    ):
        configured = getattr(settings, name, None)
        if configured is not None:
            add_secrets(configured.get_secret_value())
    for file_name in ("jwt-secret", "webhook-secret", "audit-signing-key"):
        path = Path(settings.data_dir) / file_name
        if path.is_file():
            add_secrets(path.read_text().strip())


def redact_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return redact_text(value.decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(k) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return value


def _secret_key(key: Any) -> bool:
    name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
    return bool(_SECRET_KEYS.search(name))


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Never logs Authorization headers, bearer tokens, the JWT or webhook secret, or a
    password inside a URL: by key name, by shape (eyJ…, Bearer …) and by value."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _secret_key(key) else _redact_value(value)
    return event_dict


def _add_service(service: str) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _add_correlation_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    cid = correlation_id.get()
    if cid:
        event_dict.setdefault("correlation_id", cid)
    return event_dict


def _add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    log_fields(event_dict)
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn's duplicate of the message
    return event_dict


def _shared(service: str) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _add_service(service),
        _add_correlation_id,
        _add_trace_ids,
    ]


def wants_console(service: str, stream: TextIO, log_format: str = "auto") -> bool:
    """People read `orderflow dev` on a terminal; everything else (pipes, files, the
    production services) is read by machines, as JSON. `log_format` json|console forces it."""
    if log_format in ("json", "console"):
        return log_format == "console"
    return service == "dev" and stream.isatty()


def configure_logging(
    service: str,
    level: str | int = "INFO",
    stream: TextIO | None = None,
    log_format: str = "auto",
) -> logging.Handler:
    """JSON lines (or, for a person at `orderflow dev`'s terminal, coloured console lines)
    to `stream` (stderr) from the root logger; replaces an earlier call's handler, so it
    may be called again (tests capture with their own stream)."""
    stream = stream or sys.stderr
    # the console renderer lays out exceptions itself; JSON needs them as a string field
    rendering: list[Processor] = (
        [redact, structlog.dev.ConsoleRenderer()]
        if wants_console(service, stream, log_format)
        else [
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(default=str),
        ]
    )
    shared = _shared(service)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            *rendering,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for noisy in ("kafka", "kafka.conn", "kafka.coordinator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    return handler


def remove_handler(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)


def unique(values: Iterable[str | None], limit: int = 20) -> list[str]:
    """Distinct non-empty values in first-seen order, at most `limit` (for log fields)."""
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
            if len(seen) >= limit:
                break
    return list(seen)


SERVICES = {
    "write-api": "write-api",
    "read-api": "read-api",
    "relay": "relay",
    "project": "projector",
    "worker": "worker",
    "dev": "dev",
}


def service_for(argv: list[str]) -> str:
    """The service name of a command line (`orderflow project` logs as "projector")."""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return SERVICES.get(arg, "cli")
    return "cli"
