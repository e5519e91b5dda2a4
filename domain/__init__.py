"""Aggregates, their events and invariants. No I/O lives here."""
