"""Event schema versions and upcasters, on the library's own terms.

The library stores `class_version` in an event's state when its class declares a version
above 1, and on read calls the class's `upcast_v1_v2`, `upcast_v2_v3`, … until the state
has the newest shape, so aggregates only ever see that shape. Our event classes are made
by `@event("order.created")` from a method's signature and cannot be written out in the
class body under their dotted names, so `declare_versions` sets the same two things on the
made class afterwards. `upcast` runs the same chain for readers that decode stored state
themselves (envelopes for Kafka and exports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.domain import Aggregate, CanMutateAggregate

Upcaster = Callable[[dict[str, Any]], None]  # turns state of version N into N + 1, in place
VERSION_KEY = "class_version"


def event_class(aggregate: type[Aggregate], name: str) -> type[CanMutateAggregate[Any]]:
    """The class `@event(name)` made on the aggregate, e.g. ("order.created")."""
    found = vars(aggregate).get(name)
    if not (isinstance(found, type) and issubclass(found, CanMutateAggregate)):
        raise LookupError(f"{aggregate.__name__} has no event {name!r}")
    return found


def declare_versions(aggregate: type[Aggregate], name: str, *upcasters: Upcaster) -> None:
    """The event `name` is at version 1 + len(upcasters); upcasters[0] turns version 1 into
    version 2, upcasters[1] version 2 into 3, and so on. Old versions are never dropped:
    stored events stay as they were written."""
    cls = event_class(aggregate, name)
    cls.class_version = len(upcasters) + 1  # type: ignore[attr-defined]
    for n, upcaster in enumerate(upcasters, start=1):
        setattr(cls, f"upcast_v{n}_v{n + 1}", staticmethod(upcaster))


def version_of(cls: type) -> int:
    version: int = getattr(cls, VERSION_KEY, 1)
    return version


def upcast(cls: type, state: dict[str, Any]) -> int:
    """Brings decoded stored state up to the class's version, in place, as the library's
    mapper does; returns that version. State written without a version is version 1."""
    version: int = state.pop(VERSION_KEY, 1)
    newest = version_of(cls)
    if version > newest:
        raise ValueError(f"{cls.__qualname__}: stored version {version} is newer than {newest}")
    while version < newest:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
    return version
