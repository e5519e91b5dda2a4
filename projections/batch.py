"""One batch of events into one projection: rows loaded once, events folded in memory,
results written with one bulk statement per table.

Per event, a handler that raises is retried and then parked, in memory. A failure the
database reports when the batch is written (a constraint, say) cannot be pinned on an
event, so the batch is bisected, each half in its own savepoint, until the event that
fails alone is found: a clean batch costs one savepoint, not one per event. On PostgreSQL
all the read models of a batch are applied in one pipeline first (`apply_together`), and
one at a time this way only when the database refused something there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

import orjson

from projections.collector import collection_paused
from projections.ports import Tx
from projections.read_model import Handler, ReadModelTx, SqlReadModel, Table
from projections.rows import Row, Rows
from schemas.envelope import Envelope

ATTEMPTS = 3
LOAD_CHUNK = 500  # keys per SELECT … IN (…) on SQLite: well under its variable limit


_KEYS_KEPT = 16_384
_keys: dict[int, str] = {}


def aggregate_key(aggregate_id: UUID) -> str:
    """An aggregate's id as its rows hold it. Each read model of a batch wants it again,
    and a UUID's `str` costs a microsecond. Cached by the id's number: a UUID's own hash
    and equality are Python methods, which made an lru_cache lookup cost a fifth of that."""
    number = aggregate_id.int
    key = _keys.get(number)
    if key is None:
        if len(_keys) >= _KEYS_KEPT:
            _keys.clear()
        key = _keys[number] = str(aggregate_id)
    return key


@dataclass
class Outcome:
    applied: list[Envelope] = field(default_factory=list)
    failed: list[tuple[Envelope, str]] = field(default_factory=list)
    held: list[Envelope] = field(default_factory=list)  # behind a failed one of its aggregate

    def add(self, other: Outcome) -> None:
        self.applied += other.applied
        self.failed += other.failed
        self.held += other.held


def fold(
    projection: SqlReadModel, rows: Rows, envelopes: Sequence[Envelope], blocked: set[str]
) -> Outcome:
    """Applies each event's handler to the rows in memory; `blocked` (aggregate ids whose
    events wait behind a dead letter) grows with each failure."""
    outcome = Outcome()
    handlers, applied = projection.handlers, outcome.applied
    for envelope in envelopes:
        handler = handlers.get(envelope.type)
        if handler is None:
            continue
        # usually nothing is blocked, and the key would cost a lookup per event and read model
        if blocked and aggregate_key(envelope.aggregate_id) in blocked:
            outcome.held.append(envelope)
            continue
        try:  # the first attempt outside the retry loop: nearly every event needs one only
            handler(envelope, rows)
        except Exception as failure:  # a deterministic fault: the handler's or the data's
            rows.drop()
            error = _retried(handler, envelope, rows, failure)
            if error is not None:
                outcome.failed.append((envelope, f"{type(error).__name__}: {error}"))
                blocked.add(aggregate_key(envelope.aggregate_id))
                continue
        else:
            rows.keep()
        applied.append(envelope)
    return outcome


def _retried(
    handler: Handler, envelope: Envelope, rows: Rows, error: Exception
) -> Exception | None:
    """The handler's further attempts after a first that raised `error`: None once one
    returns (its changes kept), else the last error."""
    for _ in range(ATTEMPTS - 1):
        try:
            handler(envelope, rows)
        except Exception as failure:
            rows.drop()
            error = failure
        else:
            rows.keep()
            return None
    return error


def _aggregate_ids(projection: SqlReadModel, envelopes: Sequence[Envelope]) -> list[str]:
    return sorted(
        {aggregate_key(e.aggregate_id) for e in envelopes if e.type in projection.handlers}
    )


def _lookups(projection: SqlReadModel, ids: list[str]) -> list[tuple[str, str, list[object]]]:
    """PostgreSQL: (table, query, parameters) loading the rows of these aggregates."""
    return [
        (table.name, f"SELECT * FROM {{{table.name}}} WHERE {table.key[0]} = ANY(%s)", [ids])
        for table in projection.tables
        if table.lookup and ids
    ]


def load(target: ReadModelTx, projection: SqlReadModel, envelopes: Sequence[Envelope]) -> Rows:
    """The rows the events' aggregates own, one query per table (and chunk on SQLite)."""
    rows = Rows(projection.tables)
    ids = _aggregate_ids(projection, envelopes)
    if target.tx.dialect == "postgres":
        for name, query, params in _lookups(projection, ids):
            rows.loaded(name, target.all(query, params))
        return rows
    for table in projection.tables:
        if not table.lookup or not ids:
            continue
        select = f"SELECT * FROM {{{table.name}}} WHERE {table.key[0]}"
        for start in range(0, len(ids), LOAD_CHUNK):
            chunk = ids[start : start + LOAD_CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            rows.loaded(table.name, target.all(f"{select} IN ({marks})", chunk))
    return rows


def write(target: ReadModelTx, projection: SqlReadModel, rows: Rows) -> None:
    """On PostgreSQL one statement per table and kind of change, the rows travelling as
    one JSON array that the server casts to the table's own row type; SQLite, in-process,
    runs the same upsert per row."""
    postgres = target.tx.dialect == "postgres"
    for table in projection.tables:
        upserts, deletes = rows.changes(table.name)
        if deletes and postgres and len(table.key) == 1:
            target.execute(
                f"DELETE FROM {{{table.name}}} WHERE {table.key[0]} = ANY(%s)",
                [[key[0] for key in deletes]],
            )
        elif deletes:
            where = " AND ".join(f"{column} = %s" for column in table.key)
            target.executemany(f"DELETE FROM {{{table.name}}} WHERE {where}", deletes)
        for columns, group in _by_columns(upserts).items():
            if postgres:
                names = ", ".join(columns)
                source = f"SELECT {names} FROM json_populate_recordset(NULL::{{{table.name}}}, %s)"
                document = orjson.dumps(group).decode()
                target.execute(_upsert(table, columns, source), [document])
            else:
                marks = ", ".join(["%s"] * len(columns))
                values = [tuple(row.values()) for row in group]
                target.executemany(_upsert(table, columns, f"VALUES ({marks})"), values)


def _by_columns(rows: list[Row]) -> dict[tuple[str, ...], list[Row]]:
    grouped: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        grouped.setdefault(tuple(row), []).append(row)
    return grouped


def _upsert(table: Table, columns: tuple[str, ...], source: str) -> str:
    changed = [c for c in columns if c not in table.key]
    assignments = ", ".join(f"{c} = excluded.{c}" for c in changed)
    action = f"DO UPDATE SET {assignments}" if changed else "DO NOTHING"
    return (
        f"INSERT INTO {{{table.name}}} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join(table.key)}) {action}"
    )


def apply_batch(
    target: ReadModelTx,
    projection: SqlReadModel,
    envelopes: Sequence[Envelope],
    blocked: set[str],
) -> Outcome:
    """Folds and writes the events (in log order); a write the database refuses is
    bisected down to the event that fails alone, which is parked as failed."""
    handled = [e for e in envelopes if e.type in projection.handlers]
    if not handled:
        return Outcome()
    trial = set(blocked)
    target.tx.execute("SAVEPOINT apply_batch")
    try:
        rows = load(target, projection, handled)
        with collection_paused():
            outcome = fold(projection, rows, handled, trial)
        write(target, projection, rows)
    except Exception as refused:
        # outside the try: on a dead connection the rollback fails too, and that escapes,
        # so a transient fault is never bisected into dead letters
        target.tx.execute("ROLLBACK TO SAVEPOINT apply_batch")
        if len(handled) == 1:
            blocked.add(str(handled[0].aggregate_id))
            return Outcome(failed=[(handled[0], f"{type(refused).__name__}: {refused}")])
        middle = len(handled) // 2
        outcome = apply_batch(target, projection, handled[:middle], blocked)
        outcome.add(apply_batch(target, projection, handled[middle:], blocked))
        return outcome
    target.tx.execute("RELEASE SAVEPOINT apply_batch")
    blocked |= trial
    return outcome


# a read model's share of a batch: its tables, the read model, its events, its blocked
# aggregates
Work = tuple[ReadModelTx, SqlReadModel, Sequence[Envelope], set[str]]


def apply_together(tx: Tx, work: Sequence[Work]) -> list[Outcome] | None:
    """PostgreSQL: every read model's batch in one pipeline and one savepoint. Their loads
    go to the server together, and each read model's writes are sent, not waited for,
    while the next one folds, so that the server works while Python does (measured: the
    writes' round trips were a tenth of the projector's thread, the loads' a twentieth).
    When the database refuses anything, nothing of it stays and the answer is None: the
    caller applies them one by one (`apply_batch`), which bisects down to the refused event."""
    handled = [[e for e in batch if e.type in model.handlers] for _, model, batch, _ in work]
    trials = [set(blocked) for _, _, _, blocked in work]
    try:
        with tx.pipeline():
            tx.execute("SAVEPOINT apply_together")
            queries = [
                (i, table, target.sql(query), params)
                for i, ((target, model, _, _), events) in enumerate(zip(work, handled, strict=True))
                for table, query, params in _lookups(model, _aggregate_ids(model, events))
            ]
            results = tx.all_each([(query, params) for _, _, query, params in queries])
            loaded = [Rows(model.tables) for _, model, _, _ in work]
            for (i, table, _, _), found in zip(queries, results, strict=True):
                loaded[i].loaded(table, found)
            outcomes = []
            for (target, model, _, _), events, rows, trial in zip(
                work, handled, loaded, trials, strict=True
            ):
                with collection_paused():
                    outcomes.append(fold(model, rows, events, trial))
                write(target, model, rows)
            tx.execute("RELEASE SAVEPOINT apply_together")
    except Exception:
        # in the handler, outside the try: on a dead connection the rollback fails too, and
        # that escapes, so a transient fault is never bisected into dead letters
        tx.execute("ROLLBACK TO SAVEPOINT apply_together")
        return None
    for (_, _, _, blocked), trial in zip(work, trials, strict=True):
        blocked |= trial
    return outcomes
