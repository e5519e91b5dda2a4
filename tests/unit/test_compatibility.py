"""The compatibility gate: the code may not break a committed event schema, except by a new
version with an upcaster; the gate itself tried on temporary copies of the committed files."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import BaseModel

from domain.versions import version_of
from infra.eventstore.envelopes import EVENT_CLASSES, declared_upcasters
from schemas.compatibility import ChangeKind, compare, gate
from schemas.events import PAYLOAD_VERSIONS, PAYLOADS, Payload, latest_version
from schemas.export import (
    DIRECTORY,
    IncompatibleSchemas,
    check,
    committed_event_schemas,
    event_file,
    event_schemas,
    export,
    render,
)
from schemas.types import Cents


def kinds(old: type[BaseModel], new: type[BaseModel]) -> list[tuple[str, ChangeKind]]:
    return [(c.path, c.kind) for c in compare(old.model_json_schema(), new.model_json_schema())]


class Paid(Payload):
    amount_cents: Cents
    payment_ref: str


class PaidRetyped(Payload):
    amount_cents: str
    payment_ref: str


class PaidWithoutRef(Payload):
    amount_cents: Cents


class PaidWithProvider(Payload):  # additive
    amount_cents: Cents
    payment_ref: str
    provider: str | None = None


class PaidWithRequiredProvider(Payload):
    amount_cents: Cents
    payment_ref: str
    provider: str


class PaidMaybeAmount(Payload):
    amount_cents: Cents | None
    payment_ref: str


class PaidOptionalRef(Payload):
    amount_cents: Cents
    payment_ref: str | None = None


def test_a_new_optional_property_is_additive() -> None:
    changes = compare(Paid.model_json_schema(), PaidWithProvider.model_json_schema())
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("provider", ChangeKind.ADDED, False)
    ]


@pytest.mark.parametrize(
    ("new", "path", "kind"),
    [
        (PaidRetyped, "amount_cents", ChangeKind.RETYPED),
        (PaidWithoutRef, "payment_ref", ChangeKind.REMOVED),
        (PaidWithRequiredProvider, "provider", ChangeKind.NEWLY_REQUIRED),
        (PaidMaybeAmount, "amount_cents", ChangeKind.RETYPED),  # consumers would meet null
        (PaidOptionalRef, "payment_ref", ChangeKind.RETYPED),
    ],
)
def test_breaking_changes_are_named_with_their_path(
    new: type[BaseModel], path: str, kind: ChangeKind
) -> None:
    assert (path, kind) in kinds(Paid, new)
    assert all(c.breaking for c in compare(Paid.model_json_schema(), new.model_json_schema()))


def test_a_property_made_optional_breaks_consumers_that_read_it() -> None:
    class Before(Payload):
        ref: str | None

    class After(Payload):
        ref: str | None = None

    assert kinds(Before, After) == [("ref", ChangeKind.NOW_OPTIONAL)]


class Item(Payload):
    sku: str
    order_id: UUID


class ItemWithTextId(Payload):
    sku: str
    order_id: str


class ItemWithoutSku(Payload):
    order_id: UUID


class Batch(Payload):
    items: list[Item]


class BatchOfTextIds(Payload):
    items: list[ItemWithTextId]


class BatchWithoutSku(Payload):
    items: list[ItemWithoutSku]


def test_changes_inside_array_items_and_definitions_are_found() -> None:
    assert kinds(Batch, BatchWithoutSku) == [("items[].sku", ChangeKind.REMOVED)]
    retyped = compare(Batch.model_json_schema(), BatchOfTextIds.model_json_schema())
    assert [(c.path, c.kind) for c in retyped] == [("items[].order_id", ChangeKind.RETYPED)]
    assert "format uuid -> None" in str(retyped[0])


def test_the_code_keeps_every_committed_event_schema_compatible() -> None:
    assert check(declared_upcasters()) == []


def test_every_event_class_is_at_its_newest_schema_version_with_its_upcasters() -> None:
    assert set(EVENT_CLASSES) == set(PAYLOADS) == set(PAYLOAD_VERSIONS)
    for event_type, cls in EVENT_CLASSES.items():
        newest = latest_version(event_type)
        assert version_of(cls) == newest, event_type
        assert PAYLOADS[event_type] is PAYLOAD_VERSIONS[event_type][newest]
    assert ("order.created", 1) in declared_upcasters()


def test_order_created_v2_needed_a_new_version() -> None:
    code = event_schemas()
    v1, v2 = code[("order.created", 1)], code[("order.created", 2)]
    assert [str(c) for c in compare(v1, v2)] == ["shipping_address: new required property"]
    assert gate({("order.created", 1): v1}, code, upcasters=set()) == [
        "order.created: v2 exists but no upcaster from v1"
    ]


# The gate on temporary copies of the committed files, with the code changed in the test.


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    copy = tmp_path / "json"
    shutil.copytree(DIRECTORY, copy)
    return copy


def with_paid(monkeypatch: pytest.MonkeyPatch, versions: dict[int, type[Payload]]) -> None:
    monkeypatch.setitem(PAYLOAD_VERSIONS, "order.paid", versions)


def test_the_gate_rejects_a_breaking_change_to_a_committed_version(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_paid(monkeypatch, {1: PaidRetyped})
    problems = check(declared_upcasters(), committed)
    assert len(problems) == 1
    assert problems[0].startswith("order.paid v1: breaking change to the committed schema")
    assert "amount_cents: retyped (integer -> string)" in problems[0]
    assert "declare v2 with an upcaster from v1" in problems[0]


def test_export_refuses_a_breaking_change_and_writes_nothing(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {p: p.read_bytes() for p in committed.rglob("*.json")}
    with_paid(monkeypatch, {1: PaidWithoutRef})
    with pytest.raises(IncompatibleSchemas, match="payment_ref: removed"):
        export(committed, upcasters=declared_upcasters())
    assert {p: p.read_bytes() for p in committed.rglob("*.json")} == before


def test_the_gate_accepts_an_additive_change_which_export_then_commits(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_paid(monkeypatch, {1: PaidWithProvider})
    assert check(declared_upcasters(), committed) == []
    export(committed, upcasters=declared_upcasters())
    written = (committed / event_file("order.paid", 1)).read_text()
    assert written == render(PaidWithProvider.model_json_schema())
    assert check(declared_upcasters(), committed) == []


def test_a_breaking_change_passes_as_a_new_version_with_an_upcaster(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_paid(monkeypatch, {1: PAYLOADS["order.paid"], 2: PaidRetyped})
    without = check(declared_upcasters(), committed)
    assert without == ["order.paid: v2 exists but no upcaster from v1"]
    assert check({*declared_upcasters(), ("order.paid", 1)}, committed) == []
    export(committed, upcasters={*declared_upcasters(), ("order.paid", 1)})
    kept = committed_event_schemas(committed)
    assert kept[("order.paid", 1)] == PAYLOADS["order.paid"].model_json_schema()
    assert kept[("order.paid", 2)] == PaidRetyped.model_json_schema()


def test_a_committed_version_may_not_disappear(
    committed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PAYLOAD_VERSIONS, "order.created", {2: PAYLOADS["order.created"]})
    problems = check(declared_upcasters(), committed)
    assert problems[0].startswith("order.created v1: committed, but the code no longer has it")
    assert "order.created: versions [2] are not 1..2" in problems


def test_every_version_of_every_payload_has_its_own_committed_file() -> None:
    for event_type, version in event_schemas():
        assert (DIRECTORY / event_file(event_type, version)).is_file()
    assert set(committed_event_schemas()) == set(event_schemas())
