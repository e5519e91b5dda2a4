"""What tests read from a committed command."""

from __future__ import annotations

from commands.bus import Committed
from commands.results import OrderFacts


def placed(committed: Committed) -> OrderFacts:
    """The facts of the order a PlaceOrder (or any order command) committed."""
    assert isinstance(committed.result, OrderFacts), committed
    return committed.result
