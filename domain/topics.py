"""Event classes named by their wire names ("order.created") cannot be found by the
library's attribute walk over their topic, so each aggregate registers its event classes'
topics when its module is imported: a fresh process can then read any stored event."""

from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic


def register_event_topics(aggregate: type[Aggregate]) -> None:
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, CanMutateAggregate):
            get_topic(value)  # registers topic -> class as a side effect
