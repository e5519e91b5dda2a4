"""The one registry of read models: which store each lives in, the names asked for
grouped by store, the Kafka consumer groups the projector processes form from it, and
the transports' protocol."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from commands.demo import load_demo
from infra.bootstrap import read_side, write_side
from infra.cli.read_models import default_projections, kafka_feeds
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from projections.feed import Feed, LogFeed, run_feeds
from projections.registry import REGISTRY, UnknownReadModel

SQL = ["orders", "inventory", "customer_orders", "reservations", "refunds_due"]  # by hand


def test_every_read_model_is_registered_with_its_store() -> None:
    assert list(REGISTRY.names) == [*SQL, "reporting"]
    assert REGISTRY.stores == ("read_store", "clickhouse")  # the read store first: base group
    assert list(REGISTRY.in_store("read_store")) == SQL
    assert [m.name for m in REGISTRY if not m.comparable] == ["reporting"]
    assert REGISTRY["reporting"].relations[:2] == ("order_events", "sales_lines")


def test_names_are_grouped_by_store_in_registration_order() -> None:
    grouped = REGISTRY.by_store(["reporting", "inventory", "orders"])
    assert grouped == {"read_store": ["orders", "inventory"], "clickhouse": ["reporting"]}
    assert REGISTRY.by_store([]) == {}
    with pytest.raises(UnknownReadModel, match="nope"):
        REGISTRY.by_store(["orders", "nope"])


def test_projector_processes_share_the_base_group_only_for_the_whole_read_store(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, projector_group="g")  # embedded: no ClickHouse
    assert default_projections(settings) == SQL  # a chDB in another process is never fed
    with ExitStack() as opened:
        [everything] = kafka_feeds(settings, SQL, opened)
        [some] = kafka_feeds(settings, ["orders", "inventory"], opened)
        assert (everything.group, some.group) == ("g", "g-inventory-orders")


def test_run_feeds_drives_the_embedded_transport_until_stopped(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    writes, reads = write_side(settings), read_side(settings, reports=False)
    load_demo(writes.bus, orders=2)
    head = EventLog(writes.app).head()  # from the event store, not from a read model
    feed: Feed = LogFeed(EventLog(writes.app), reads.runner)
    join = run_feeds([feed])
    deadline = time.monotonic() + 30
    while min(reads.runner.positions().values()) < head and time.monotonic() < deadline:
        time.sleep(0.05)
    feed.stop()
    join()  # returns: the feed's thread ended
    assert reads.runner.positions() == dict.fromkeys(SQL, head)
    writes.close()
    reads.close()
