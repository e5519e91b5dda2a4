"""An aggregate's whole state as plain JSON values: what must come out the same whether it
was replayed from its first event, from a snapshot, or from a store written years ago."""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.domain import Aggregate


def public_state(aggregate: Aggregate) -> dict[str, Any]:
    """Every attribute (id, version, timestamps and the domain's own), JSON-normalised:
    UUIDs and datetimes as their str(), enums as their values."""
    state = {
        name.lstrip("_"): value
        for name, value in vars(aggregate).items()
        if name != "_pending_events"
    }
    normalised: dict[str, Any] = json.loads(json.dumps(state, default=str, sort_keys=True))
    return normalised
