"""Which events a transaction may apply: claimed per position, not per projection.

A batch inserts one `projection_pending` row per position it is about to apply, in the
same transaction as the changes. The row's primary key is the lock: two projectors that
hold the same event (a Kafka rebalance redelivers it) serialise on that row alone, and
the second finds it taken; projectors with different events never wait for each other.
Afterwards, a short transaction folds the claimed positions into the watermark along the
log's predecessor chain (projections/watermark.py) and deletes the rows it covered.

Every applying transaction holds the state row FOR KEY SHARE, which the compaction's
update does not conflict with, but a rebuild's swap (FOR UPDATE) does: the swap waits
for the batches in flight and holds new ones off.

A projector applies several read models in one transaction: `claim_all` and
`compact_all` do it for all of them at once, in a fixed number of statements on
PostgreSQL (measured: claims and compaction one read model at a time were half of a
projector's batch, mostly round trips); SQLite, in-process, goes one read model at a
time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from projections.ports import Row, Tx
from projections.watermark import Watermark
from schemas.envelope import Envelope

CLAIM_CHUNK = 1000  # rows per INSERT: three variables each, under SQLite's limit


def _now() -> str:
    return datetime.now().astimezone().isoformat()


def ensure_state(tx: Tx, state_name: str) -> None:
    tx.execute(
        "INSERT INTO projection_state (name, watermark, updated_at) VALUES (%s, 0, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (state_name, _now()),
    )


def watermark(tx: Tx, state_name: str, lock: str = "") -> int:
    row = tx.one(f"SELECT watermark FROM projection_state WHERE name = %s{lock}", (state_name,))
    if row is None:
        ensure_state(tx, state_name)
        return watermark(tx, state_name, lock)
    return int(row["watermark"])


def claim(tx: Tx, state_name: str, envelopes: Sequence[Envelope]) -> list[Envelope]:
    """The envelopes not applied yet, in position order, now claimed by this transaction
    (one of each position)."""
    watermark(tx, state_name, " FOR KEY SHARE")  # the fence a rebuild's swap waits on
    unique = sorted({e.position: e for e in envelopes}.values(), key=lambda e: e.position)
    taken: set[int] = set()
    for start in range(0, len(unique), CLAIM_CHUNK):
        chunk = unique[start : start + CLAIM_CHUNK]
        taken.update(_insert(tx, state_name, chunk))
    # read after the claim: a compaction that committed meanwhile may have deleted the
    # row of a position it covered, and the watermark it wrote says so
    covered = watermark(tx, state_name)
    return [e for e in unique if e.position in taken and e.position > covered]


def _insert(tx: Tx, state_name: str, envelopes: Sequence[Envelope]) -> list[int]:
    """The positions inserted (those not claimed before), in one statement."""
    positions = [e.position for e in envelopes]
    previous = [e.previous_position for e in envelopes]
    if tx.dialect == "postgres":  # arrays: psycopg parses a long VALUES list slowly
        source = "SELECT %s, p, q FROM unnest(%s::bigint[], %s::bigint[]) AS u(p, q)"
        params: list[object] = [state_name, positions, previous]
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s)"] * len(envelopes))
        params = [v for row in zip(positions, previous, strict=True) for v in (state_name, *row)]
    rows = tx.all(
        f"INSERT INTO projection_pending (name, position, previous) {source} "
        "ON CONFLICT (name, position) DO NOTHING RETURNING position",
        params,
    )
    return [int(r["position"]) for r in rows]


def compact(tx: Tx, state_name: str, last_event_at: datetime | None = None) -> int:
    """Moves the watermark over the claimed positions that now follow on from it."""
    before = watermark(tx, state_name, " FOR NO KEY UPDATE")
    rows = tx.all(
        "SELECT position, previous FROM projection_pending WHERE name = %s", (state_name,)
    )
    mark = Watermark(before)
    for row in sorted(rows, key=lambda r: int(r["position"])):
        position = int(row["position"])
        if position > mark.position:
            mark.mark(position, int(row["previous"]))
    tx.execute(
        "UPDATE projection_state SET watermark = %s, updated_at = %s, "
        "last_event_at = COALESCE(%s, last_event_at) WHERE name = %s",
        (mark.position, _now(), last_event_at.isoformat() if last_event_at else None, state_name),
    )
    if rows and min(int(r["position"]) for r in rows) <= mark.position:
        tx.execute(
            "DELETE FROM projection_pending WHERE name = %s AND position <= %s",
            (state_name, mark.position),
        )
    return mark.position


def claim_all(
    tx: Tx, state_names: Sequence[str], envelopes: Sequence[Envelope]
) -> dict[str, list[Envelope]]:
    """`claim` for several read models in one transaction: per state name, the envelopes
    it has not applied yet, now claimed by this transaction."""
    if tx.dialect != "postgres":
        return {name: claim(tx, name, envelopes) for name in state_names}
    names = sorted(state_names)  # one lock order for every projector
    _watermarks(tx, names, " FOR KEY SHARE")  # the fence a rebuild's swap waits on
    unique = sorted({e.position: e for e in envelopes}.values(), key=lambda e: e.position)
    refused: dict[str, set[int]] = {name: set() for name in names}
    for row in _insert_all(tx, names, unique):
        refused[row["name"]].add(int(row["position"]))
    covered = _watermarks(tx, names)  # read after the claim, as `claim` does
    return {
        name: [e for e in unique if e.position > covered[name] and e.position not in refused[name]]
        for name in state_names
    }


def _insert_all(tx: Tx, names: list[str], envelopes: Sequence[Envelope]) -> list[Row]:
    """Claims every position for every name; returns the claims refused (taken before: a
    redelivery), usually none. First as a plain INSERT, which costs the server half what
    `ON CONFLICT` does (measured: 5,000 rows in 10 ms against 19-37 ms); a position
    claimed already refuses the whole statement, and then the claims are made again with
    `ON CONFLICT DO NOTHING`, the refused ones anti-joined out of what was asked (only
    they come back: returning every row inserted was a sixth of a batch's time)."""
    source = (
        "SELECT n, u.p, u.q FROM unnest(%s::text[]) AS n "
        "CROSS JOIN unnest(%s::bigint[], %s::bigint[]) AS u(p, q)"
    )
    params = (
        names,
        _int_array(e.position for e in envelopes),
        _int_array(e.previous_position for e in envelopes),
    )
    tx.execute("SAVEPOINT claim")
    try:
        tx.execute(f"INSERT INTO projection_pending (name, position, previous) {source}", params)
    except Exception:
        # in the handler, outside the try: on a dead connection the rollback fails too,
        # and that escapes, so a transient fault is never taken for a redelivery
        tx.execute("ROLLBACK TO SAVEPOINT claim")
        return tx.all(
            f"WITH wanted AS ({source}), "
            "taken AS (INSERT INTO projection_pending (name, position, previous) "
            "SELECT n, p, q FROM wanted "
            "ON CONFLICT (name, position) DO NOTHING RETURNING name, position) "
            "SELECT w.n AS name, w.p AS position FROM wanted AS w WHERE NOT EXISTS ("
            "SELECT 1 FROM taken AS t WHERE t.name = w.n AND t.position = w.p)",
            params,
        )
    tx.execute("RELEASE SAVEPOINT claim")
    return []


def compact_all(
    tx: Tx, state_names: Sequence[str], last_event_at: datetime | None = None
) -> dict[str, int]:
    """`compact` for several read models, in one transaction."""
    if tx.dialect != "postgres":
        return {name: compact(tx, name, last_event_at) for name in state_names}
    names = sorted(state_names)
    reached = _walk(tx, _watermarks(tx, names, " FOR NO KEY UPDATE"))
    tx.execute(
        "UPDATE projection_state AS s SET watermark = u.w, updated_at = %s, "
        "last_event_at = COALESCE(%s, s.last_event_at) "
        "FROM unnest(%s::text[], %s::bigint[]) AS u(n, w) WHERE s.name = u.n",
        (
            _now(),
            last_event_at.isoformat() if last_event_at else None,
            names,
            _int_array(reached[name] for name in names),
        ),
    )
    # also takes the rows a redelivery claimed again below the watermark
    tx.execute(
        "DELETE FROM projection_pending AS p USING unnest(%s::text[], %s::bigint[]) "
        "AS u(n, w) WHERE p.name = u.n AND p.position <= u.w",
        (names, _int_array(reached[name] for name in names)),
    )
    return {name: reached[name] for name in state_names}


def _walk(tx: Tx, watermarks: dict[str, int]) -> dict[str, int]:
    """Each watermark moved along the claimed positions that follow on from it.

    The read models of one projector claim the same positions and usually share their
    watermark, so the chain is walked once per distinct watermark (by its first name, the
    leader); another name at that watermark that holds as many pending rows up to where
    the leader stopped holds that very chain (the log has no other position in between),
    so it starts its own walk there, usually one step. Measured: walking every read
    model's chain was a sixth of a batch."""
    leaders: dict[int, str] = {}
    for name in sorted(watermarks):
        leaders.setdefault(watermarks[name], name)
    led = _chain(tx, {name: watermarks[name] for name in leaders.values()})
    followers = {n: w for n, w in watermarks.items() if leaders[w] != n}
    if not followers:
        return {name: reached for name, (reached, _) in led.items()}
    names = sorted(followers)
    ends = {name: led[leaders[followers[name]]] for name in names}
    held = tx.all(
        "SELECT u.n AS name, count(p.position) AS held "
        "FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS u(n, low, high) "
        "LEFT JOIN projection_pending AS p "
        "ON p.name = u.n AND p.position > u.low AND p.position <= u.high GROUP BY u.n",
        (
            names,
            _int_array(followers[name] for name in names),
            _int_array(ends[name][0] for name in names),
        ),
    )
    same = {row["name"] for row in held if int(row["held"]) == ends[row["name"]][1]}
    starts = {name: ends[name][0] if name in same else followers[name] for name in names}
    reached = {name: end for name, (end, _) in led.items()}
    reached.update({name: end for name, (end, _) in _chain(tx, starts).items()})
    return reached


def _chain(tx: Tx, watermarks: dict[str, int]) -> dict[str, tuple[int, int]]:
    """Per name, how far its claimed positions follow on from `watermarks` and in how
    many steps, walked by the server: the log's next position after W is the lowest one
    above it, so each step is one index probe for the lowest pending position above W,
    taken when its predecessor is W. Its cost is what the watermark moves, not how many
    positions wait beyond a gap (hundreds of thousands, when one Kafka partition runs far
    ahead of another), and one row per name comes back."""
    names = sorted(watermarks)
    rows = tx.all(
        "WITH RECURSIVE chain(name, w) AS ("
        "SELECT n, w FROM unnest(%s::text[], %s::bigint[]) AS u(n, w) "
        "UNION ALL "
        "SELECT c.name, nxt.position FROM chain AS c CROSS JOIN LATERAL ("
        "SELECT position, previous FROM projection_pending "
        "WHERE name = c.name AND position > c.w ORDER BY position LIMIT 1) AS nxt "
        "WHERE nxt.previous = c.w) "
        "SELECT name, max(w) AS w, count(*) - 1 AS steps FROM chain GROUP BY name",
        (names, _int_array(watermarks[name] for name in names)),
    )
    return {row["name"]: (int(row["w"]), int(row["steps"])) for row in rows}


def _watermarks(tx: Tx, names: Sequence[str], lock: str = "") -> dict[str, int]:
    """Each state row's watermark (created when missing), locked as asked, in name order."""
    query = f"SELECT name, watermark FROM projection_state WHERE name = ANY(%s) ORDER BY name{lock}"
    found = {row["name"]: int(row["watermark"]) for row in tx.all(query, (list(names),))}
    if missing := [name for name in names if name not in found]:
        for name in missing:
            ensure_state(tx, name)
        return _watermarks(tx, names, lock)
    return found


def _int_array(values: Any) -> str:
    """A bigint[] in PostgreSQL's text form: psycopg's list adapter took longer to build
    a thousand-element parameter than the server took to insert its rows."""
    return "{" + ",".join(map(str, values)) + "}"
