from hypothesis import given
from hypothesis import strategies as st

from projections.watermark import Watermark


def test_in_order_positions_move_the_watermark() -> None:
    mark = Watermark()
    for position in (1, 2, 3):
        mark.mark(position, position - 1)
    assert (mark.position, mark.beyond) == (3, {})


def test_a_position_ahead_of_its_predecessor_waits_beyond() -> None:
    mark = Watermark()
    mark.mark(3, 2)
    assert (mark.position, mark.has(3), mark.has(2)) == (0, True, False)
    mark.mark(1, 0)
    mark.mark(2, 1)
    assert (mark.position, mark.beyond) == (3, {})


def test_holes_in_the_positions_are_crossed_by_the_predecessor_chain() -> None:
    mark = Watermark()
    mark.mark(5, 1)  # 2, 3, 4 were never committed
    mark.mark(1, 0)
    assert mark.position == 5


@given(st.lists(st.integers(1, 40), min_size=1, max_size=25, unique=True), st.randoms())
def test_any_arrival_order_ends_at_the_last_position(positions: list[int], rnd: object) -> None:
    chain = sorted(positions)
    predecessor = dict(zip(chain, [0, *chain[:-1]], strict=True))
    arrival = list(chain)
    rnd.shuffle(arrival)  # type: ignore[attr-defined]
    mark = Watermark()
    for position in arrival:
        mark.mark(position, predecessor[position])
        assert mark.position == max(
            [0, *[p for p in chain if all(mark.has(q) for q in chain if q <= p)]]
        )
    assert (mark.position, mark.beyond) == (chain[-1], {})


def test_reach_follows_the_chain_read_back_whole_without_moving() -> None:
    """Read back from a store (the reports' progress table), the positions beyond may
    chain on from the watermark already: reach says how far, by hand 7, and moves nothing."""
    mark = Watermark(3, {4: 3, 7: 4, 9: 8})  # 8 not applied: 9 waits
    assert mark.reach() == 7
    assert (mark.position, mark.beyond) == (3, {4: 3, 7: 4, 9: 8})
    assert Watermark(3, {9: 8}).reach() == 3
