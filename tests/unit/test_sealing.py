"""Sealing personal fields (infra/eventstore/sealing.py) over keys held in a dict."""

from __future__ import annotations

import os
from typing import Any
from uuid import uuid4

from domain.order import Order
from domain.personal import PersonalData
from infra.eventstore.personal_keys import DataKey
from infra.eventstore.sealing import is_sealed, open_sealed, personal_data_of, seal

DECLARED = PersonalData(subject="customer_id", fields=("shipping_address",))
ADDRESS = {
    "recipient": "Ada",
    "line1": "1 Way",
    "line2": None,
    "postal_code": "N1",
    "city": "London",
    "country": "GB",
}


class DictKeys:
    def __init__(self) -> None:
        self.by_subject: dict[str, DataKey] = {}

    def current(self, subject: str) -> DataKey:
        if subject not in self.by_subject:
            self.by_subject[subject] = DataKey(str(uuid4()), os.urandom(32))
        return self.by_subject[subject]

    def find(self, key_id: str) -> bytes | None:
        return next((k.key for k in self.by_subject.values() if k.key_id == key_id), None)


def state(**extra: Any) -> dict[str, Any]:
    return {"customer_id": "ada", "total_cents": 5, "shipping_address": ADDRESS, **extra}


def test_a_sealed_field_opens_to_its_value_while_the_key_exists() -> None:
    keys = DictKeys()
    sealed = seal(state(), DECLARED, keys)
    assert is_sealed(sealed["shipping_address"])
    assert "Ada" not in str(sealed)
    assert sealed["total_cents"] == 5  # other fields untouched
    assert open_sealed(sealed, DECLARED, keys) == (state(), [])


def test_a_destroyed_key_redacts_the_field_for_good() -> None:
    keys = DictKeys()
    sealed = seal(state(), DECLARED, keys)
    keys.by_subject.clear()
    keys.current("ada")  # a new key for the same customer opens nothing old
    assert open_sealed(sealed, DECLARED, keys) == (
        state(shipping_address=None),
        ["shipping_address"],
    )


def test_a_ciphertext_moved_under_another_key_id_does_not_open() -> None:
    keys = DictKeys()
    mine = seal(state(), DECLARED, keys)["shipping_address"]
    other = seal(state(customer_id="bob"), DECLARED, keys)["shipping_address"]
    forged = state(shipping_address={**mine, "key_id": other["key_id"]})
    assert open_sealed(forged, DECLARED, keys)[0]["shipping_address"] is None


def test_none_stays_none_and_orders_declare_the_address_personal() -> None:
    assert seal(state(shipping_address=None), DECLARED, DictKeys())["shipping_address"] is None
    assert personal_data_of(Order) == DECLARED
    assert personal_data_of(Order.Snapshot) == DECLARED
