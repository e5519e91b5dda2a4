"""Signed checkpoints anchor the chain (issue 14, point 3), on SQLite and PostgreSQL: a
log cut at its end or rewritten with its links verifies on its own, but not against a
checkpoint taken before; a tampered checkpoint is refused."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from domain.inventory import InventoryItem
from infra.audit.chain import GENESIS, canonical, link
from infra.audit.checkpoint import from_json, sign
from infra.audit.checkpoints import (
    ChainBroken,
    Checkpointer,
    CheckpointStore,
    signing_key,
)
from infra.audit.checkpoints import take as take_checkpoint
from infra.audit.queries import Audit
from infra.bootstrap import WriteSide, read_side, write_side
from infra.cli import app as cli
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from read_api.app import create_app
from schemas.auth import Role
from tests.api.test_audit_api import _tamper
from tests.api.test_write_api import is_problem
from tests.scenarios import save_every_event_type

Auth = Callable[..., dict[str, str]]
PG_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # base64url of bytes 0..31
DELETE_EVENT = {
    "sqlite": "DELETE FROM stored_events WHERE rowid = ?",
    "postgres": "DELETE FROM orderflow_events WHERE notification_id = %s",
}
DELETE_LINK = {
    "sqlite": "DELETE FROM orderflow_audit WHERE position = ?",
    "postgres": "DELETE FROM orderflow_audit WHERE position = %s",
}


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    """Embedded: the key is generated under the data dir; PostgreSQL: it must be set."""
    if settings.embedded:
        return settings
    return settings.model_copy(update={"audit_signing_key": SecretStr(PG_KEY)})


@pytest.fixture
def store(keyed: Settings) -> Iterator[WriteSide]:
    wired = write_side(keyed)
    save_every_event_type(wired.app)
    yield wired
    wired.close()


@pytest.fixture
def client(keyed: Settings, store: WriteSide) -> Iterator[TestClient]:
    reads = read_side(keyed)
    with TestClient(create_app(reads)) as answering:
        yield answering
    reads.close()


def orderflow(keyed: Settings, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(keyed.data_dir), COLUMNS="200")
    if not keyed.embedded:
        env.update(ORDERFLOW_DATABASE_URL=keyed.database_url, ORDERFLOW_AUDIT_SIGNING_KEY=PG_KEY)
    return CliRunner().invoke(cli, list(args), env=env)


def report_of(result: Result) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def stored_head_link(side: WriteSide) -> tuple[int, bytes]:
    """The oracle: the head position and its stored link, read straight from the tables."""
    head = EventLog(side.app).head()
    found = side.app.orderflow_recorder.link_at(head)
    assert found is not None
    return head, found


def test_a_checkpoint_signs_the_head_and_a_clean_store_verifies_against_it(
    keyed: Settings, store: WriteSide, tmp_path: Path
) -> None:
    taken = orderflow(keyed, "audit", "checkpoint", "--output", str(tmp_path / "cp.json"))
    assert taken.exit_code == 0, taken.output
    checkpoint = from_json((tmp_path / "cp.json").read_text())
    assert (checkpoint.position, checkpoint.head_hash) == stored_head_link(store)
    assert CheckpointStore(keyed.checkpoint_dir).ids() == [checkpoint.id]
    if keyed.embedded:  # generated on first use, readable by its owner only
        assert (keyed.data_dir / "audit-signing-key").stat().st_mode & 0o777 == 0o600

    verified = orderflow(keyed, "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert verified.exit_code == 0, verified.output
    assert report_of(verified) | {"checked": None} == {
        "ok": True,
        "checked": None,
        "first_bad_position": None,
        "reason": None,
        "last_position": checkpoint.position,
        "checkpoint": checkpoint.id,
    }


def test_the_last_event_deleted_with_its_link_fails_against_the_checkpoint_naming_it(
    keyed: Settings, store: WriteSide, tmp_path: Path, client: TestClient, auth: Auth
) -> None:
    assert orderflow(keyed, "audit", "checkpoint", "--output", str(tmp_path / "cp.json"))
    checkpoint = from_json((tmp_path / "cp.json").read_text())
    head = EventLog(store.app).head()
    _tamper(store, DELETE_EVENT, head)
    _tamper(store, DELETE_LINK, head)

    plain = orderflow(keyed, "audit", "verify")
    assert (plain.exit_code, report_of(plain)["ok"]) == (0, True)  # what the chain alone misses
    anchored = orderflow(keyed, "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert anchored.exit_code == 1
    report = report_of(anchored)
    assert (report["ok"], report["first_bad_position"]) == (False, head)
    assert checkpoint.id in report["reason"]
    assert f"ends at position {EventLog(store.app).head()}" in report["reason"]

    answered = client.get(
        "/audit/verify", params={"checkpoint": checkpoint.id}, headers=auth(Role.AUDITOR)
    )
    assert answered.status_code == 200, answered.text
    assert answered.json() == report
    uploaded = client.post(
        "/audit/verify",
        json=json.loads((tmp_path / "cp.json").read_text()),
        headers=auth(Role.AUDITOR),
    )
    assert uploaded.json() == report

    # nor will a new checkpoint be signed over the cut
    with pytest.raises(ChainBroken, match=checkpoint.id):
        take_checkpoint(
            Audit(store.app),
            signing_key(keyed),
            CheckpointStore(keyed.checkpoint_dir),
            datetime.now(UTC),
        )


def test_a_log_rewritten_with_all_its_links_fails_against_the_checkpoint(
    keyed: Settings, store: WriteSide, tmp_path: Path
) -> None:
    assert orderflow(keyed, "audit", "checkpoint", "--output", str(tmp_path / "cp.json"))
    head = EventLog(store.app).head()
    _rewrite_last_event_and_its_link(store, head)
    assert report_of(orderflow(keyed, "audit", "verify"))["ok"] is True
    anchored = orderflow(keyed, "audit", "verify", "--checkpoint", str(tmp_path / "cp.json"))
    assert anchored.exit_code == 1
    assert (report_of(anchored)["first_bad_position"], "rewritten" in anchored.stdout) == (
        head,
        True,
    )


def _rewrite_last_event_and_its_link(side: WriteSide, head: int) -> None:
    """What someone with write access does: change an event and recompute its link."""
    recorder = side.app.orderflow_recorder
    event = side.app.recorder.select_notifications(head, 1)[0]
    previous_position = recorder.chain_rows(head - 1, 1)[0].previous_position or 0
    previous = recorder.link_at(previous_position) if previous_position else GENESIS
    state = event.state + b" "
    forged = link(
        previous or GENESIS,
        canonical(head, event.originator_id, event.originator_version, event.topic, state),
    )
    statements = {
        "sqlite": [
            ("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, head)),
            ("UPDATE orderflow_audit SET hash = ? WHERE position = ?", (forged, head)),
        ],
        "postgres": [
            ("UPDATE orderflow_events SET state = %s WHERE notification_id = %s", (state, head)),
            ("UPDATE orderflow_audit SET hash = %s WHERE position = %s", (forged, head)),
        ],
    }
    with recorder.datastore.transaction(commit=True) as c:
        for sql, params in statements["sqlite" if side.settings.embedded else "postgres"]:
            c.execute(sql, params)


def test_a_tampered_checkpoint_is_refused_by_the_cli_and_the_api(
    keyed: Settings, store: WriteSide, tmp_path: Path, client: TestClient, auth: Auth
) -> None:
    assert orderflow(keyed, "audit", "checkpoint", "--output", str(tmp_path / "cp.json"))
    fields = json.loads((tmp_path / "cp.json").read_text())
    fields["position"] -= 1  # claims less, as someone covering a cut would
    (tmp_path / "forged.json").write_text(json.dumps(fields))
    refused = orderflow(keyed, "audit", "verify", "--checkpoint", str(tmp_path / "forged.json"))
    assert refused.exit_code == 1
    assert "signature does not match" in report_of(refused)["reason"]
    answered = client.post("/audit/verify", json=fields, headers=auth(Role.AUDITOR))
    assert answered.status_code == 200, answered.text  # a failed verification, as the CLI's
    assert answered.json()["ok"] is False
    assert "signature does not match" in answered.json()["reason"]
    kept = keyed.checkpoint_dir / f"{fields['id']}.json"
    kept.write_text(json.dumps(fields))  # tampered in place
    by_id = client.get(
        "/audit/verify", params={"checkpoint": fields["id"]}, headers=auth(Role.AUDITOR)
    )
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["ok"] is False
    assert "signature does not match" in by_id.json()["reason"]


def test_checkpoints_by_id_are_listed_and_unknown_ids_are_404(
    keyed: Settings, store: WriteSide, client: TestClient, auth: Auth
) -> None:
    checkpoint = take_checkpoint(
        Audit(store.app),
        signing_key(keyed),
        CheckpointStore(keyed.checkpoint_dir),
        datetime.now(UTC),
    )
    listed = client.get("/audit/checkpoints", headers=auth(Role.AUDITOR)).json()["items"]
    assert [(c["id"], c["position"]) for c in listed] == [
        (checkpoint.id, EventLog(store.app).head())
    ]
    for unknown in ["nope", "../events.sqlite", ".hidden"]:
        answered = client.get(
            "/audit/verify", params={"checkpoint": unknown}, headers=auth(Role.AUDITOR)
        )
        is_problem(answered, 404, "unknown-checkpoint")
    both = client.get(
        "/audit/verify",
        params={"checkpoint": checkpoint.id, "after_position": 1},
        headers=auth(Role.AUDITOR),
    )
    is_problem(both, 422, "checkpoint-from-the-start")
    is_problem(client.get("/audit/checkpoints", headers=auth(Role.CUSTOMER, "c")), 403, "forbidden")


def test_the_worker_signs_when_the_log_grew_and_only_then(
    keyed: Settings, store: WriteSide
) -> None:
    kept = CheckpointStore(keyed.checkpoint_dir)
    worker = Checkpointer(Audit(store.app), signing_key(keyed), kept, timedelta(hours=1))
    first = worker.run_once()
    assert first is not None
    assert first.position == EventLog(store.app).head()
    assert worker.run_once() is None  # nothing new
    store.app.save(InventoryItem(sku="NEW", name="new", unit_price_cents=1))
    second = worker.run_once()
    assert second is not None
    assert second.position == EventLog(store.app).head() > first.position
    assert len(kept.ids()) == 2
    off = Checkpointer(Audit(store.app), signing_key(keyed), kept, timedelta(0))
    assert off.start() is None


def test_openapi_describes_checkpoint_verification(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    parameters = [p["name"] for p in paths["/audit/verify"]["get"]["parameters"]]
    assert {"after_position", "checkpoint"} <= set(parameters)
    assert "requestBody" in paths["/audit/verify"]["post"]
    assert "422" in paths["/audit/verify"]["post"]["responses"]
    assert "/audit/checkpoints" in paths


def test_the_worker_wiring_turns_checkpoints_off_at_0_and_without_a_key(
    keyed: Settings, store: WriteSide, caplog: pytest.LogCaptureFixture
) -> None:
    from infra.cli.background import audit_checkpointer

    on = audit_checkpointer(keyed, store)
    assert on is not None
    assert on.interval == timedelta(hours=1)
    assert (
        audit_checkpointer(
            keyed.model_copy(update={"audit_checkpoint_interval": timedelta(0)}), store
        )
        is None
    )
    if not keyed.embedded:
        keyless = Settings(data_dir=keyed.data_dir, database_url=keyed.database_url)
        assert audit_checkpointer(keyless, store) is None
        assert "ORDERFLOW_AUDIT_SIGNING_KEY must be set" in caplog.text


@pytest.mark.postgres
def test_without_a_key_to_check_with_the_api_says_so_with_501(
    postgres_settings: Settings, auth: Auth
) -> None:
    side = write_side(postgres_settings)
    save_every_event_type(side.app)
    head = EventLog(side.app).head()
    link_hash = side.app.orderflow_recorder.link_at(head)
    assert link_hash is not None
    taken = sign(Ed25519PrivateKey.generate(), head, link_hash, datetime.now(UTC))
    CheckpointStore(postgres_settings.checkpoint_dir).save(taken)
    reads = read_side(postgres_settings)  # neither signing nor public key set
    with TestClient(create_app(reads)) as answering:
        answered = answering.get(
            "/audit/verify", params={"checkpoint": taken.id}, headers=auth(Role.AUDITOR)
        )
    reads.close()
    side.close()
    is_problem(answered, 501, "checkpoint-key-missing")
