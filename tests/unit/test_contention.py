"""When an aggregate counts as contended: overtaken `after` times, each within the window
of the last, and kept so while its commands are routed (infra/eventstore/contention.py)."""

from __future__ import annotations

from uuid import uuid4

from infra.eventstore.contention import Contention


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_aggregate_is_contended_after_the_third_overtake_within_the_window() -> None:
    clock, hot, other = Clock(), uuid4(), uuid4()
    contention = Contention(after=3, window_s=10, clock=clock)
    for seen in range(3):
        assert not contention.contended(hot), seen
        contention.overtaken([hot])
        clock.now += 9
    assert contention.contended(hot)
    assert not contention.contended(other)


def test_overtakes_further_apart_than_the_window_start_counting_again() -> None:
    clock, hot = Clock(), uuid4()
    contention = Contention(after=2, window_s=10, clock=clock)
    contention.overtaken([hot])
    clock.now += 11
    contention.overtaken([hot])
    assert not contention.contended(hot)
    contention.overtaken([hot])
    assert contention.contended(hot)


def test_a_routed_aggregate_stays_contended_and_one_left_alone_cools_down() -> None:
    clock, routed, left = Clock(), uuid4(), uuid4()
    contention = Contention(after=1, window_s=10, clock=clock)
    contention.overtaken([routed, left])
    for _ in range(5):  # 30 s of routed commands, no overtake
        clock.now += 6
        contention.still_contended(routed)
    assert contention.contended(routed)
    assert not contention.contended(left)


def test_still_contended_never_makes_an_aggregate_contended() -> None:
    contention, aggregate = Contention(after=1), uuid4()
    contention.still_contended(aggregate)
    assert not contention.contended(aggregate)


def test_after_zero_makes_every_aggregate_contended() -> None:
    assert Contention(after=0).contended(uuid4())
