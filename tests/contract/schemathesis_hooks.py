"""Schemathesis hooks for fuzzing OrderFlow (loaded with SCHEMATHESIS_HOOKS).

They supply what a schema cannot: credentials and facts only a real client has. Each is a
documented rule of the API, not a way around a check:
- staff must name the customer of an order (the description says so; a token decides who
  is staff, which a schema cannot express), so staff requests name one;
- a `cursor` is opaque, valid only as a `next_cursor` the API gave out, so made-up cursors
  are not sent;
- an `If-Match` names a version an ETag gave out, so made-up versions are not sent;
- an `Idempotency-Key` names one request: a client makes a fresh one for each new request;
- a payment webhook is signed by the provider with the shared secret, so each body is
  signed (and sent as exactly the bytes that were signed)."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from typing import Any

import schemathesis

from infra.http.webhook_signature import sign

WEBHOOK_SECRET = os.environ.get("ORDERFLOW_PAYMENT_WEBHOOK_SECRET", "")


def _is(context_or_case: Any, method: str, path: str) -> bool:
    operation = getattr(context_or_case, "operation", None)
    return bool(
        operation is not None and operation.method.upper() == method and operation.path == path
    )


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if (
        _is(context, "POST", "/orders")
        and isinstance(body, dict)
        and body.get("customer_id") is None
    ):
        return {**body, "customer_id": "customer-fuzz"}
    return body


@schemathesis.hook
def map_query(context: Any, query: Any) -> Any:
    if isinstance(query, dict) and "cursor" in query:
        return {k: v for k, v in query.items() if k != "cursor"}
    return query


VALID_KEY = re.compile(r"^[!-~]{1,255}$")
SIGNATURE = re.compile(r"^t=[0-9]+,v1=[0-9a-f]+")
VERSION = re.compile(r'^(W/)?"?[0-9]{1,18}"?$')


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = dict(case.headers or {})
    for name in list(headers):
        value = str(headers[name])
        if name.lower() == "if-match" and VERSION.match(value):
            del headers[name]
        elif name.lower() == "idempotency-key" and VALID_KEY.match(value):
            headers[name] = f"fuzz-{uuid.uuid4()}"
    case.headers = headers
    if isinstance(case.query, dict) and "cursor" in case.query:
        case.query = map_query(context, case.query)
        if isinstance(kwargs.get("params"), dict):
            kwargs["params"] = map_query(context, kwargs["params"])
    if _is(case, "POST", "/orders") and isinstance(case.body, dict):
        _send_json(case, kwargs, map_body(case, case.body))
    elif _is(case, "POST", "/webhooks/payments") and WEBHOOK_SECRET:
        # a well-formed signature header is made real; a missing or malformed one is left
        # as generated, for the server to refuse
        name = next((n for n in headers if n.lower() == "payment-signature"), None)
        if name is not None and SIGNATURE.match(str(headers[name])):
            body = case.body if isinstance(case.body, dict | list) else {}
            raw = _send_json(case, kwargs, body)
            case.headers[name] = sign(WEBHOOK_SECRET, int(time.time()), raw)


def _send_json(case: Any, kwargs: dict[str, Any], body: Any) -> bytes:
    """Sends `body` as exactly these bytes (every phase, whatever it serialised)."""
    raw = json.dumps(body).encode()
    kwargs.pop("json", None)
    kwargs["data"] = raw
    case.headers["Content-Type"] = "application/json"
    return raw
