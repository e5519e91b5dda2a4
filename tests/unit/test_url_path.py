"""The Idempotency-Key's fingerprint takes the request's path from the scope
(`write_api.dispatch.url_path`), no longer from Starlette's URL: a key stored before must
match the same request after, so the two must be equal for every path a command takes.
The oracle is Starlette's own `Request.url.path`."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from write_api.dispatch import url_path


def request_for(path: str, query: bytes = b"") -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
            "path": path,
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"example.org:8000")],
        }
    )


@pytest.mark.parametrize(
    "path",
    [
        "/orders",
        "/orders/0b6e3a56-8f0c-4f7e-9a43-2b9d1f3c5e77/payments",
        "/inventory",
        "/inventory/KB-1/receipts",
        "/inventory/a.b_c-9/price",
        "/inventory/a?b/receipts",  # sent as %3F: not a SKU, but escaped alike
        "/inventory/a#b/receipts",
        "/inventory/a\\b/receipts",
        "/inventory/é ü/receipts",
        "//orders",
        "/orders/",
    ],
)
def test_the_path_is_starlettes_url_path(path: str) -> None:
    assert url_path(request_for(path)) == request_for(path).url.path
    assert url_path(request_for(path, b"x=1")) == request_for(path, b"x=1").url.path
