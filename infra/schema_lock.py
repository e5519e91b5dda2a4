"""One PostgreSQL advisory lock serialises every OrderFlow process's DDL.

Each process creates the tables it needs when it starts. PostgreSQL's catalog is not safe
for concurrent `CREATE ... IF NOT EXISTS` or `CREATE OR REPLACE FUNCTION` of the same
object ("tuple concurrently updated", duplicate pg_type keys), so processes started
together take turns: the first creates, the others find everything there."""

from __future__ import annotations

SCHEMA_LOCK_KEY = 0x0F_0F_5C_E3  # pg_advisory_lock key (the relay's is 0x0F0F0F0F)
LOCK_FOR_TRANSACTION = "SELECT pg_advisory_xact_lock(%s)"  # released at commit/rollback
LOCK_FOR_SESSION = "SELECT pg_advisory_lock(%s)"
UNLOCK_FOR_SESSION = "SELECT pg_advisory_unlock(%s)"
