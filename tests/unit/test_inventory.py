from uuid import uuid4

import pytest

from domain.errors import InsufficientStock, InvalidArgument, StockAdjustmentRefused
from domain.inventory import InventoryItem


def item(on_hand: int = 10) -> InventoryItem:
    registered = InventoryItem(sku="KB-1", name="Keyboard", unit_price_cents=1000)
    if on_hand:
        registered.receive(on_hand)
    return registered


def event_types(aggregate: InventoryItem) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_registering_an_item_starts_with_no_stock() -> None:
    new = InventoryItem(sku="KB-1", name="Keyboard", unit_price_cents=1000)
    assert (new.on_hand, new.reserved, new.available) == (0, 0, 0)
    assert event_types(new) == ["inventory.item_registered"]


def test_the_same_sku_always_names_the_same_aggregate() -> None:
    assert (
        InventoryItem.create_id("KB-1")
        == InventoryItem(sku="KB-1", name="x", unit_price_cents=1).id
    )
    assert InventoryItem.create_id("KB-1") != InventoryItem.create_id("KB-2")


def test_receiving_stock_raises_on_hand() -> None:
    stocked = item(on_hand=0)
    stocked.receive(7)
    assert stocked.on_hand == 7
    assert event_types(stocked)[-1] == "inventory.stock_received"


@pytest.mark.parametrize("quantity", [0, -3])
def test_receiving_nothing_or_less_is_refused(quantity: int) -> None:
    stocked = item()
    with pytest.raises(InvalidArgument):
        stocked.receive(quantity)
    assert stocked.on_hand == 10


def test_reserving_holds_stock_for_the_order() -> None:
    stocked, order_id = item(), uuid4()
    stocked.reserve(order_id, 4)
    assert (stocked.on_hand, stocked.reserved, stocked.available) == (10, 4, 6)
    assert stocked.reserved_for(order_id) == 4


def test_reserving_more_than_available_is_refused() -> None:
    stocked = item(on_hand=3)
    with pytest.raises(InsufficientStock) as refused:
        stocked.reserve(uuid4(), 4)
    assert (refused.value.requested, refused.value.available) == (4, 3)
    assert stocked.reserved == 0
    assert event_types(stocked) == ["inventory.item_registered", "inventory.stock_received"]


def test_reserving_twice_for_one_order_is_refused() -> None:
    stocked, order_id = item(), uuid4()
    stocked.reserve(order_id, 1)
    with pytest.raises(InvalidArgument):
        stocked.reserve(order_id, 1)
    assert stocked.reserved == 1


def test_releasing_gives_the_reservation_back_once() -> None:
    stocked, order_id = item(), uuid4()
    stocked.reserve(order_id, 4)
    assert stocked.release(order_id, "cancelled") is True
    assert stocked.release(order_id, "cancelled") is False
    assert (stocked.reserved, stocked.available) == (0, 10)
    assert event_types(stocked)[-1] == "inventory.reservation_released"


def test_committing_takes_reserved_stock_out_of_the_warehouse() -> None:
    stocked, order_id = item(), uuid4()
    stocked.reserve(order_id, 4)
    stocked.commit(order_id)
    assert (stocked.on_hand, stocked.reserved, stocked.available) == (6, 0, 6)


def test_committing_without_a_reservation_is_refused() -> None:
    stocked = item()
    with pytest.raises(InvalidArgument):
        stocked.commit(uuid4())
    assert stocked.on_hand == 10


def test_adjusting_down_below_reserved_is_refused() -> None:
    stocked = item(on_hand=5)
    stocked.reserve(uuid4(), 3)
    with pytest.raises(StockAdjustmentRefused):
        stocked.adjust(-3, "breakage")
    stocked.adjust(-2, "breakage")
    assert (stocked.on_hand, stocked.available) == (3, 0)


def test_adjusting_by_zero_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        item().adjust(0, "nothing")


def test_price_changes_are_recorded_and_negative_prices_refused() -> None:
    stocked = item()
    stocked.change_price(1250)
    assert stocked.unit_price_cents == 1250
    with pytest.raises(InvalidArgument):
        stocked.change_price(-1)
    assert stocked.unit_price_cents == 1250
