"""Which events a transaction may apply: claimed per position, not per projection.

A batch inserts a `projection_pending` row per position it is about to apply (per read
model, or one for its claim set), in the same transaction as the changes. The row's
primary key is the lock: two projectors that hold the same event (a Kafka rebalance
redelivers it) serialise on that row alone, and the second finds it taken; projectors
with different events never wait for each other. Afterwards, a short transaction folds
the claimed positions into the watermark (projections/compaction.py) and deletes the rows
it covered.

Every applying transaction of a registered set holds the state rows FOR KEY SHARE, which
the compaction's update does not conflict with, but a rebuild's swap (FOR UPDATE) does:
the swap waits for the batches in flight and holds new ones off. A claimer outside any
registered set holds them FOR UPDATE (claim_sets.py says why).

A projector applies several read models in one transaction: `claim_all` does it for all
of them at once, in a fixed number of statements on PostgreSQL (measured: claims one read
model at a time were a quarter of a projector's batch, mostly round trips), with one row
per position for the whole set while no other set overlaps it (projections/claim_sets.py);
SQLite, in-process, goes one read model at a time. Compaction: projections/compaction.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from projections import claim_sets
from projections.ports import Row, Tx
from schemas.envelope import Envelope

CLAIM_CHUNK = 1000  # rows per INSERT: three variables each, under SQLite's limit


def now() -> str:
    return datetime.now().astimezone().isoformat()


def ensure_state(tx: Tx, state_name: str) -> None:
    tx.execute(
        "INSERT INTO projection_state (name, watermark, updated_at) VALUES (%s, 0, %s) "
        "ON CONFLICT (name) DO NOTHING",
        (state_name, now()),
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


def claim_all(
    tx: Tx, state_names: Sequence[str], envelopes: Sequence[Envelope]
) -> dict[str, list[Envelope]]:
    """`claim` for several read models in one transaction: per state name, the envelopes
    it has not applied yet, now claimed by this transaction."""
    if tx.dialect != "postgres":
        return {name: claim(tx, name, envelopes) for name in state_names}
    names = sorted(state_names)  # one lock order for every projector
    registered = claim_sets.set_key(names) in claim_sets.overlapping(tx, names)
    # the fence a rebuild's swap waits on; unregistered, also the one a set's batches hold
    watermarks(tx, names, " FOR KEY SHARE" if registered else " FOR UPDATE")
    sets = claim_sets.overlapping(tx, names)  # after the lock: a set registered meanwhile
    unique = sorted({e.position: e for e in envelopes}.values(), key=lambda e: e.position)
    by_set = claim_sets.claims_by_set(names, sets)
    own = {name: claim_sets.set_key(names) if by_set else name for name in names}
    refused: dict[str, set[int]] = {name: set() for name in names}
    for row in _insert_all(tx, sorted(set(own.values())), unique):
        for name in names:
            if own[name] == row["name"]:
                refused[name].add(int(row["position"]))
    others = {n: [k for k in claim_sets.keys_holding(n, sets) if k != own[n]] for n in names}
    for row in _held_elsewhere(tx, others, unique):
        refused[row["name"]].add(int(row["position"]))
    covered = watermarks(tx, names)  # read after the claim, as `claim` does
    return {name: _fresh(unique, covered[name], refused[name]) for name in state_names}


def _fresh(unique: list[Envelope], covered: int, refused: set[int]) -> list[Envelope]:
    if not refused and (not unique or unique[0].position > covered):
        return unique  # the usual case: all of it, shared by the read models (not copied)
    return [e for e in unique if e.position > covered and e.position not in refused]


def _insert_all(tx: Tx, keys: list[str], envelopes: Sequence[Envelope]) -> list[Row]:
    """Claims every position under every key; returns the claims refused (taken before: a
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
        keys,
        int_array(e.position for e in envelopes),
        int_array(e.previous_position for e in envelopes),
    )
    try:
        with tx.pipeline():  # one round trip for the three; a refusal shows at its end
            tx.execute("SAVEPOINT claim")
            tx.execute(
                f"INSERT INTO projection_pending (name, position, previous) {source}", params
            )
            tx.execute("RELEASE SAVEPOINT claim")
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
    return []


def _held_elsewhere(
    tx: Tx, others: dict[str, list[str]], envelopes: Sequence[Envelope]
) -> list[Row]:
    """(name, position) of the batch claimed under another key holding the read model: a
    range scan per key, which finds nothing unless sets overlap or a claimer outside its
    set (a verify) applied some."""
    pairs = [(name, key) for name, keys in others.items() for key in keys]
    if not pairs or not envelopes:
        return []
    rows = tx.all(
        "SELECT u.n AS name, p.position FROM unnest(%s::text[], %s::text[]) AS u(n, k) "
        "JOIN projection_pending AS p ON p.name = u.k AND p.position BETWEEN %s AND %s",
        (
            [name for name, _ in pairs],
            [key for _, key in pairs],
            envelopes[0].position,
            envelopes[-1].position,
        ),
    )
    wanted = {e.position for e in envelopes} if rows else set()
    return [row for row in rows if int(row["position"]) in wanted]


def watermarks(tx: Tx, names: Sequence[str], lock: str = "") -> dict[str, int]:
    """Each state row's watermark (created when missing), locked as asked, in name order."""
    query = f"SELECT name, watermark FROM projection_state WHERE name = ANY(%s) ORDER BY name{lock}"
    found = {row["name"]: int(row["watermark"]) for row in tx.all(query, (list(names),))}
    if missing := [name for name in names if name not in found]:
        for name in missing:
            ensure_state(tx, name)
        return watermarks(tx, names, lock)
    return found


def int_array(values: Any) -> str:
    """A bigint[] in PostgreSQL's text form: psycopg's list adapter took longer to build
    a thousand-element parameter than the server took to insert its rows."""
    return "{" + ",".join(map(str, values)) + "}"
