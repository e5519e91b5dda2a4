"""Every read model OrderFlow maintains, in one registry (Marten's single projection
registry is the model), whatever store it lives in: the SQL read models in the read store
(PostgreSQL, SQLite embedded), the reports in ClickHouse (chDB embedded).

The registry says which read model lives in which store; a projector per store
(projections/projector.py) applies, rebuilds and reports on them, so the CLI and the
projector processes handle every read model alike: they group the names asked for by
store and open that store's projector."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from projections.customer_orders import customer_orders
from projections.inventory import inventory
from projections.orders import orders
from projections.read_model import SqlReadModel
from projections.refunds_due import refunds_due
from projections.reporting import reporting
from projections.reservations import reservations


class ReadModel(Protocol):
    """What the registry knows of a read model, without opening its store."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def store(self) -> str: ...
    @property
    def relations(self) -> tuple[str, ...]:
        """The tables (and views) it owns."""
        ...

    @property
    def comparable(self) -> bool:
        """Whether it has a checked rebuild (`projections verify`, `rebuild --check`)."""
        ...


class UnknownReadModel(KeyError):
    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(f"unknown projection {sorted(names)}")


class Registry:
    def __init__(self, *models: ReadModel) -> None:
        self._models = {m.name: m for m in models}

    def __iter__(self) -> Iterator[ReadModel]:
        return iter(self._models.values())

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __getitem__(self, name: str) -> ReadModel:
        return self._models[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._models)

    @property
    def stores(self) -> tuple[str, ...]:
        """In registration order: the first store's full set owns the base consumer group."""
        return tuple(dict.fromkeys(m.store for m in self))

    def in_store(self, store: str) -> tuple[str, ...]:
        return tuple(m.name for m in self if m.store == store)

    def by_store(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The names asked for, grouped by store, both in registration order."""
        wanted = set(names)
        if unknown := wanted - self._models.keys():
            raise UnknownReadModel(unknown)
        grouped: dict[str, list[str]] = {}
        for model in self:
            if model.name in wanted:
                grouped.setdefault(model.store, []).append(model.name)
        return grouped


SQL_READ_MODELS: tuple[SqlReadModel, ...] = (
    orders,
    inventory,
    customer_orders,
    reservations,
    refunds_due,
)
SQL_BY_NAME: dict[str, SqlReadModel] = {m.name: m for m in SQL_READ_MODELS}
REGISTRY = Registry(*SQL_READ_MODELS, reporting)
