"""Declaring which of an aggregate's fields hold personal data, and whose.

The domain only declares; the event store seals these fields (in events and snapshots)
with the subject's data key, so that destroying the key forgets them (ADR 0023)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PersonalData:
    """`fields` name attributes, and event arguments, that hold personal data of the
    subject named by the attribute `subject` (e.g. the customer's id)."""

    subject: str
    fields: tuple[str, ...]
