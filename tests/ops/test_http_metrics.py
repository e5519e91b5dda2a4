"""Both APIs count and time every request by route template and status (not raw paths)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from schemas.auth import Role
from tests.ops.helpers import label_values, samples, value

Auth = Callable[..., dict[str, str]]
COUNT = "orderflow_http_requests_total"
LATENCY = "orderflow_http_request_duration_seconds_count"


def test_requests_are_counted_per_route_template_and_status(
    write_client: TestClient, read_client: TestClient, auth: Auth
) -> None:
    admin = auth(Role.ADMIN)
    before = samples(read_client.get("/metrics").text)
    unknown = [uuid.uuid4() for _ in range(3)]
    for order_id in unknown:
        assert read_client.get(f"/orders/{order_id}", headers=admin).status_code == 404
    assert read_client.get("/orders", headers=admin).status_code == 200
    assert read_client.get("/orders").status_code == 401
    assert read_client.get("/no/such/path").status_code == 404
    body = {"sku": "HTTP-1", "name": "metered", "unit_price_cents": 100, "on_hand": 1}
    assert write_client.post("/inventory", json=body, headers=admin).status_code == 201
    after = samples(read_client.get("/metrics").text)

    def grew(api: str, method: str, route: str, status: str) -> float:
        labels = {"api": api, "method": method, "route": route, "status": status}
        return value(after, COUNT, **labels) - value(before, COUNT, **labels)

    # by hand: three distinct ids, one series
    assert grew("read", "GET", "/orders/{order_id}", "404") == 3
    assert grew("read", "GET", "/orders", "200") == 1
    assert grew("read", "GET", "/orders", "401") == 1
    assert grew("read", "GET", "unmatched", "404") == 1
    assert grew("write", "POST", "/inventory", "201") == 1
    routes = label_values(after, COUNT, "route")
    assert not any(str(order_id) in route for route in routes for order_id in unknown)
    timed = value(after, LATENCY, api="read", method="GET", route="/orders/{order_id}")
    assert timed - value(before, LATENCY, api="read", method="GET", route="/orders/{order_id}") == 3
