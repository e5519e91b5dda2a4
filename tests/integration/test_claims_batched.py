"""Claims and compaction for several read models at once (`claim_all`, `compact_all`, a
fixed number of statements on PostgreSQL) leave exactly what claiming and compacting one
read model at a time leaves: the same envelopes to apply, the same watermarks, the same
pending rows. Both run on real PostgreSQL, side by side on mirrored state rows. With the
read models registered as a claim set (one row per position for all of them), or beside
an overlapping set, they apply and reach what a walk by hand over every claim says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.bootstrap import read_store
from infra.settings import Settings
from projections import claim_sets, claims, compaction
from projections.ports import ReadStore, Tx
from projections.registry import SQL_READ_MODELS
from projections.sql_projector import SqlProjector
from schemas.envelope import Envelope

pytestmark = pytest.mark.postgres
NAMES = ("alpha", "beta", "gamma")
BATCHED, ONE_BY_ONE = "batched:", "single:"


class Rollback(Exception):
    """Leaves the example's rows behind in no committed state."""


@pytest.fixture
def store(tmp_path: Path, postgres_url: str) -> Iterator[ReadStore]:
    opened = read_store(Settings(data_dir=tmp_path, read_database_url=postgres_url))
    SqlProjector(opened, SQL_READ_MODELS).setup()  # the state and pending tables
    yield opened
    opened.close()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A log with holes, a batch drawn from it (out of order, with repeats), and per read
    model a watermark on the log and some positions already claimed beyond it."""
    log = sorted(draw(st.sets(st.integers(1, 80), min_size=1, max_size=40)))
    previous = dict(zip(log, [0, *log[:-1]], strict=True))
    batch = draw(st.lists(st.sampled_from(log), max_size=60))
    states = {}
    # read models of one projector usually share their watermark: the walk's leader case
    shared = draw(st.one_of(st.none(), st.integers(0, len(log))))
    for name in NAMES:
        cut = shared if shared is not None else draw(st.integers(0, len(log)))
        watermark = log[cut - 1] if cut else 0
        beyond = draw(st.sets(st.sampled_from(log[cut:]))) if cut < len(log) else set()
        states[name] = (watermark, sorted(beyond))
    return {"previous": previous, "batch": batch, "states": states}


def envelope(position: int, previous: int) -> Envelope:
    """Claims read only an envelope's position and its predecessor."""
    fields: dict[str, Any] = {"position": position, "previous_position": previous}
    return Envelope.model_construct(**fields)


States = dict[str, tuple[int, list[int]]]  # per read model: watermark, claimed beyond it


def seed(tx: Tx, prefix: str, states: States, previous: dict[int, int]) -> None:
    for name, (watermark, beyond) in states.items():
        tx.execute(
            "INSERT INTO projection_state (name, watermark, updated_at) VALUES (%s, %s, now())",
            (prefix + name, watermark),
        )
        for position in beyond:
            tx.execute(
                "INSERT INTO projection_pending (name, position, previous) VALUES (%s, %s, %s)",
                (prefix + name, position, previous[position]),
            )


def state_of(tx: Tx, prefix: str) -> States:
    found = {}
    for name in NAMES:
        row = tx.one("SELECT watermark FROM projection_state WHERE name = %s", (prefix + name,))
        pending = tx.all(
            "SELECT position FROM projection_pending WHERE name = %s ORDER BY position",
            (prefix + name,),
        )
        assert row is not None
        found[name] = (int(row["watermark"]), [int(r["position"]) for r in pending])
    return found


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenarios())
def test_all_at_once_equals_one_at_a_time(store: ReadStore, scenario: dict[str, Any]) -> None:
    with pytest.raises(Rollback), store.transaction() as tx:
        compare_and_roll_back(tx, scenario)


def compare_and_roll_back(tx: Tx, scenario: dict[str, Any]) -> None:
    previous, states = scenario["previous"], scenario["states"]
    batch = [envelope(p, previous[p]) for p in scenario["batch"]]
    seed(tx, BATCHED, states, previous)
    seed(tx, ONE_BY_ONE, states, previous)

    together = claims.claim_all(tx, [BATCHED + n for n in NAMES], batch)
    alone = {n: claims.claim(tx, ONE_BY_ONE + n, batch) for n in NAMES}
    for name in NAMES:
        got = [e.position for e in together[BATCHED + name]]
        assert got == [e.position for e in alone[name]]
        # by hand: new positions of the batch, beyond the watermark, not claimed before
        watermark, beyond = states[name]
        assert got == sorted({p for p in scenario["batch"] if p > watermark} - set(beyond))
    assert state_of(tx, BATCHED) == state_of(tx, ONE_BY_ONE)

    reached = compaction.compact_all(tx, [BATCHED + n for n in NAMES])
    following = {before: after for after, before in previous.items()}
    for name in NAMES:
        assert reached[BATCHED + name] == compaction.compact(tx, ONE_BY_ONE + name)
        # by hand: along the log from the watermark while each next position is claimed
        watermark, beyond = states[name]
        claimed = set(beyond) | set(scenario["batch"])
        while following.get(watermark) in claimed:
            watermark = following[watermark]
        assert reached[BATCHED + name] == watermark
    assert state_of(tx, BATCHED) == state_of(tx, ONE_BY_ONE)
    raise Rollback


SETS = "sets:"
OUTSIDER = SETS + "delta"  # in the overlapping set only


@st.composite
def set_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """A scenario whose read models are registered as a set, with positions claimed
    before under the set's key and, per read model, under its own name (a claimer
    outside the set); sometimes beside a registered set overlapping theirs, which makes
    them claim per read model, and its rows."""
    scenario = draw(scenarios())
    log = sorted(scenario["previous"])
    scenario["set_rows"] = sorted(draw(st.sets(st.sampled_from(log), max_size=20)))
    scenario["overlap_rows"] = sorted(draw(st.sets(st.sampled_from(log), max_size=20)))
    scenario["overlap"] = draw(st.booleans())
    scenario["outsider"] = draw(st.sampled_from([0, *log]))  # its watermark
    return scenario


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(set_scenarios())
def test_claims_by_set_equal_a_walk_by_hand(store: ReadStore, scenario: dict[str, Any]) -> None:
    with pytest.raises(Rollback), store.transaction() as tx:
        check_sets_and_roll_back(tx, scenario)


def check_sets_and_roll_back(tx: Tx, scenario: dict[str, Any]) -> None:
    previous, states = scenario["previous"], scenario["states"]
    names = [SETS + n for n in NAMES]
    own, other = claim_sets.set_key(names), claim_sets.set_key([OUTSIDER, names[0]])
    seed(tx, SETS, states, previous)
    seed(tx, SETS, {"delta": (scenario["outsider"], [])}, previous)
    claim_sets.register(tx, names)
    held = {own: scenario["set_rows"]}
    if scenario["overlap"]:
        claim_sets.register(tx, [OUTSIDER, names[0]])
        held[other] = scenario["overlap_rows"]
    for key, positions in held.items():
        for position in positions:
            tx.execute(
                "INSERT INTO projection_pending (name, position, previous) VALUES (%s, %s, %s)",
                (key, position, previous[position]),
            )
    by_set = not scenario["overlap"]
    assert claim_sets.claims_by_set(names, claim_sets.overlapping(tx, names)) == by_set

    def claimed_before(name: str) -> set[int]:
        """By hand: under its own name, its set's key, and the overlapping set's key."""
        found = set(states[name][1]) | set(scenario["set_rows"])
        if scenario["overlap"] and name == NAMES[0]:
            found |= set(scenario["overlap_rows"])
        return found

    got = claims.claim_all(tx, names, [envelope(p, previous[p]) for p in scenario["batch"]])
    for name in NAMES:
        watermark = states[name][0]
        expected = {p for p in scenario["batch"] if p > watermark} - claimed_before(name)
        assert [e.position for e in got[SETS + name]] == sorted(expected), name

    reached = compaction.compact_all(tx, names)
    following = {before: after for after, before in previous.items()}
    for name in NAMES:
        watermark, claimed = states[name][0], claimed_before(name) | set(scenario["batch"])
        while following.get(watermark) in claimed:
            watermark = following[watermark]
        assert reached[SETS + name] == watermark, name
    # a set's rows stay until every read model of the set has passed them
    low = min(reached.values())
    left = tx.all("SELECT position FROM projection_pending WHERE name = %s", (own,))
    rows = set(scenario["set_rows"]) | (set(scenario["batch"]) if by_set else set())
    assert sorted(int(r["position"]) for r in left) == sorted(p for p in rows if p > low)
    raise Rollback
