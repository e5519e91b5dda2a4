"""Projection-path benchmark: Kafka into the read models, and rebuilds, against raw baselines.

On one fresh PostgreSQL server and one fresh Kafka broker, in one run, it
  1. fills the event store with N real OrderFlow events (aggregates driven directly and
     saved in large batches: HTTP would take longer than everything else together);
  2. relays them all to Kafka once with OrderFlow's relay, and sends the same records
     (keys, values, headers) to topics of their own with a bare kafka-python producer;
  3. consumes the topics with a bare kafka-python consumer that decodes nothing;
  4. runs OrderFlow's Kafka projector into empty read models until every watermark
     reaches the head (or its time budget is spent);
  5. runs two projector processes in one consumer group into fresh read models, to see
     what the second adds;
  6. rebuilds each projection from the event store, then all of them in one pass (in a
     child process, whose peak RSS it reports beside the read models' size), and scans
     the events table with a bare psycopg server-side cursor;
then prints events/s and the ratios of OrderFlow to each baseline. Not a test. Run it from
the repository root (see bench/README.md):

    .venv/bin/python bench/projection_path.py [--events N] [--quick | --full] [--projector-budget S]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, only bench/ is on the path; the project and its test harness are above it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import logging
import random
import time
from contextlib import ExitStack

from bench.measure.cpu import busy_cores
from bench.measure.report import status
from bench.measure.services import bench_session, start_kafka, start_postgres
from bench.projection.kafka_stages import (
    raw_consume,
    raw_produce,
    relay_everything,
    topic_end_offsets,
)
from bench.projection.projector import project, project_in_processes
from bench.projection.rebuilds import (
    raw_scan,
    read_log,
    read_model_bytes,
    rebuild_all_in_child,
    table_digests,
)
from bench.projection.report import Outcome, report
from bench.projection.shop import Shop, event_mix
from bench.projection.stages import Plan, Stage, measured
from infra.eventstore.event_log import EventLog
from infra.eventstore.event_store import open_event_store
from infra.kafka.topics import ensure_topics
from infra.readstore.store import PostgresReadStore
from infra.settings import Settings
from projections.rebuild import rebuild
from projections.registry import SQL_READ_MODELS
from projections.verify import checked_rebuild_all

DEFAULT_EVENTS = 200_000
QUICK_EVENTS = 20_000
FULL_EVENTS = 1_000_000
SEED = 20_240_601
PROJECTOR_BUDGET_S = 240.0
JWT_SECRET = "bench-secret-of-at-least-32-bytes!"


def run(plan: Plan, work_dir: Path, stack: ExitStack) -> Outcome:
    began = time.monotonic()
    busy_before = busy_cores()
    status.print("starting PostgreSQL and Kafka…")
    pg = start_postgres(work_dir, stack)
    broker = start_kafka(work_dir, stack)
    events_dsn = pg.create_database("events")
    reads_dsn = pg.create_database("reads")
    settings = Settings(
        data_dir=work_dir / "orderflow",
        database_url=events_dsn,
        read_database_url=reads_dsn,
        jwt_secret=JWT_SECRET,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_topic_prefix="bench",
        projector_group="bench-projectors",
    )
    app = open_event_store(settings)
    stack.callback(app.close)
    store = PostgresReadStore(reads_dsn, settings.postgres_pool_size)
    stack.callback(store.close)
    stages: list[Stage] = []

    status.print(f"filling the event store with ≥ {plan.events:,} events…")
    shop = Shop(app, random.Random(SEED))
    with measured(stages, "fill", "aggregates + app.save, 5k events a save") as done:
        shop.fill(plan.events)
        done(shop.emitted)
    head = EventLog(app).head()

    status.print("relaying to Kafka…")
    ensure_topics(settings)  # created off the clock, as the raw producer's are
    with measured(stages, "relay", "OrderFlow relay: event store -> Kafka") as done:
        done(relay_everything(settings, app, head))
    on_kafka = topic_end_offsets(settings)
    raw_topics = settings.model_copy(update={"kafka_topic_prefix": "bench-raw"})
    with measured(stages, "raw_produce", "bare kafka-python producer, same records") as done:
        produced, produce_s = raw_produce(raw_topics, app)
        done(produced, produce_s)

    status.print("consuming and projecting…")
    with measured(stages, "raw_consume", "bare kafka-python consumer, no decoding") as done:
        consumed = raw_consume(settings, on_kafka)
        done(
            consumed.timed,
            consumed.seconds,
            join_s=round(consumed.join_s, 3),
            records=consumed.records,
        )
    with measured(stages, "projector", "KafkaFeed + SqlProjector, all") as done:
        projected = project(settings, store, head, plan.projector_budget_s)
        done(
            projected.envelopes,
            projected.seconds,
            join_s=round(projected.join_s, 3),
            batches=projected.batches,
            max_pending_rows=projected.max_pending,
            reached_head=projected.reached_head,
        )
    projected_digests = table_digests(store)

    parallel_dsn = pg.create_database("reads_parallel")
    parallel = settings.model_copy(update={"read_database_url": parallel_dsn})
    with measured(stages, "projector_2_processes", "2 projector processes, one group") as done:
        together = project_in_processes(parallel, head, plan.projector_budget_s, 2)
        two = together.projected
        done(
            two.envelopes,
            two.seconds,
            join_s=round(two.join_s, 3),
            envelopes_each=together.envelopes_each,
            reached_head=two.reached_head,
        )

    status.print("scanning and rebuilding…")
    with measured(stages, "raw_scan", "bare psycopg server-side cursor scan") as done:
        done(raw_scan(events_dsn))
    with measured(stages, "log_read", "EventLog.scan into envelopes") as done:
        done(read_log(app))
    rebuilt: list[Stage] = []
    for projection in SQL_READ_MODELS:
        with measured(
            rebuilt, f"rebuild_{projection.name}", "rebuild() into shadow + swap"
        ) as done:
            done(rebuild(projection, store, EventLog(app)).events)
    stages.extend(rebuilt)
    with measured(
        stages, "rebuild_all", f"rebuild_all(): {len(SQL_READ_MODELS)} projections, one pass"
    ) as done:
        events_read, seconds, peak = rebuild_all_in_child(settings)
        done(
            events_read,
            seconds,
            peak_rss_mb=round(peak / 2**20, 1),
            read_models_mb=round(read_model_bytes(store) / 2**20, 1),
        )

    with measured(
        stages, "verify_all", f"projections verify --all: {len(SQL_READ_MODELS)}, one pass"
    ) as done:
        checked = checked_rebuild_all(SQL_READ_MODELS, store, EventLog(app), swap=False)
        done(checked[0].report.events, all_equal=all(c.comparison.equal for c in checked))

    complete = projected.reached_head
    checks: dict[str, bool | None] = {  # None: not checked, the projector did not finish
        "relayed_equals_head": on_kafka == head,
        "raw_produced_equals_head": produced == head,
        "projector_reached_head": complete,
        "projector_saw_every_event_once": projected.envelopes == head if complete else None,
        "orders_projected": (
            int(projected_digests["orders"].split(":")[0]) == shop.orders if complete else None
        ),
        "verify_all_equal": all(c.comparison.equal for c in checked),
        "rebuild_equals_projector": (
            table_digests(store) == projected_digests if complete else None
        ),
    }
    return Outcome(
        plan,
        head,
        shop.orders,
        event_mix(events_dsn),
        stages,
        checks,
        busy_before,
        time.monotonic() - began,
    )


def parse_plan() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--events", type=int, help=f"at least this many events (default {DEFAULT_EVENTS:,})"
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"{QUICK_EVENTS:,} events")
    size.add_argument("--full", action="store_true", help=f"{FULL_EVENTS:,} events (takes a while)")
    parser.add_argument(
        "--projector-budget",
        type=float,
        default=PROJECTOR_BUDGET_S,
        metavar="SECONDS",
        help="stop the projector after this long if it has not reached the head"
        f" (default {PROJECTOR_BUDGET_S:g})",
    )
    args = parser.parse_args()
    events = args.events or (
        QUICK_EVENTS if args.quick else FULL_EVENTS if args.full else DEFAULT_EVENTS
    )
    return Plan(events, args.projector_budget)


def main() -> None:
    plan = parse_plan()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # kafka-python warns about every slow poll when the machine is busy; errors still show
    logging.getLogger("kafka").setLevel(logging.ERROR)
    with bench_session() as (work_dir, stack):
        outcome = run(plan, work_dir, stack)
    report(outcome)


if __name__ == "__main__":
    main()
