"""Claim sets: the read models one projector applies together, claiming each position once.

A projector process registers its set of read models at setup. While no other registered
set shares a read model with it, its batches claim a position with one
`projection_pending` row under the set's key for all its read models (measured: a row per
read model and position was the largest share of a batch's statements' time); a
position's row under the key means every read model of the set has that event. When sets
overlap (a process running some of the read models beside one running them all), their
claims are per read model, as they were before sets existed, so that both processes
conflict on the same primary key. A set registers with its read models' state rows
locked FOR UPDATE: it waits for the batches in flight, which hold them FOR KEY SHARE, and
every later batch reads the registrations after taking that lock, so no batch claims by
set once an overlapping set exists. Registrations are never removed: a set that once
overlapped keeps claiming per read model (exact, only slower).

A claimer that is not registered (a verify bringing the live tables forward, a test)
claims per read model holding the state rows FOR UPDATE, which waits for the batches in
flight; it and every claimer read the rows other keys hold for their read models, so a
position claimed under one key is never applied again under another."""

from __future__ import annotations

from collections.abc import Sequence

from projections.ports import Tx

SET_PREFIX = "set:"  # no read model's state name has a colon


def set_key(state_names: Sequence[str]) -> str:
    return SET_PREFIX + " ".join(sorted(state_names))


def create_table(tx: Tx) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS projection_claim_sets "
        "(key TEXT PRIMARY KEY, names TEXT[] NOT NULL)"
    )


def register(tx: Tx, state_names: Sequence[str]) -> None:
    """PostgreSQL only (SQLite claims per read model: one writer at a time, no sets)."""
    key = set_key(state_names)
    if tx.one("SELECT 1 AS found FROM projection_claim_sets WHERE key = %s", (key,)):
        return
    names = sorted(state_names)
    # waits for the batches in flight of any set holding one of these read models
    tx.all(
        "SELECT name FROM projection_state WHERE name = ANY(%s) ORDER BY name FOR UPDATE",
        (names,),
    )
    tx.execute(
        "INSERT INTO projection_claim_sets (key, names) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (key, names),
    )


def overlapping(tx: Tx, state_names: Sequence[str]) -> dict[str, list[str]]:
    """The registered sets holding any of these read models: key -> its read models."""
    rows = tx.all(
        "SELECT key, names FROM projection_claim_sets WHERE names && %s::text[]",
        (list(state_names),),
    )
    return {row["key"]: list(row["names"]) for row in rows}


def claims_by_set(state_names: Sequence[str], registered: dict[str, list[str]]) -> bool:
    """Whether these read models claim under their set's key: registered, more than one,
    and no other registered set holds any of them."""
    return len(state_names) > 1 and list(registered) == [set_key(state_names)]


def keys_holding(name: str, registered: dict[str, list[str]]) -> list[str]:
    """Every key a claim of `name` may be found under: its own and its registered sets'."""
    held = (k for k, names in registered.items() if name in names and len(names) > 1)
    return [name, *sorted(held)]
