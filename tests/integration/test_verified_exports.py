"""Exports carry the chain (issue 14, point 4), on SQLite and PostgreSQL: a clean export
imports with its positions and links and verifies (even against a checkpoint of the source
store); an edited, shortened or cut file is refused, naming the position, writing nothing."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from domain.inventory import InventoryItem
from infra.audit.checkpoint import Checkpoint, public_key_text, sign, to_json
from infra.audit.checkpoints import CheckpointStore
from infra.audit.export import ExportWriter, read_export
from infra.audit.queries import Audit, ExportRefused
from infra.bootstrap import WriteSide, write_side
from infra.cli import app as cli
from infra.eventstore.event_log import EventLog
from infra.settings import Settings
from schemas.audit import CheckpointFile, ExportedEvent
from tests.integration.test_audit_at_scale import empty_store_like
from tests.scenarios import save_every_event_type

Edit = Callable[[list[str]], list[str]]


@pytest.fixture
def source(settings: Settings) -> Iterator[WriteSide]:
    wired = write_side(settings)
    save_every_event_type(wired.app)
    yield wired
    wired.close()


@pytest.fixture
def target(
    settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[WriteSide]:
    wired = write_side(empty_store_like(settings, request, tmp_path / "target"))
    yield wired
    wired.close()


def export_lines(side: WriteSide, format_: str, carried: tuple[Checkpoint, ...] = ()) -> list[str]:
    out = io.StringIO(newline="")
    writer = ExportWriter(out, format_)
    for checkpoint in carried:
        writer.carry(CheckpointFile.model_validate_json(to_json(checkpoint)))
    for event in Audit(side.app).exported(batch=5):
        writer.write(event)
    writer.finish()
    return out.getvalue().splitlines(keepends=True)


def positions(side: WriteSide) -> list[int]:
    """The oracle for positions: the library's own notification log."""
    return [n.id for n in side.app.recorder.select_notifications(1, 10_000)]


@pytest.mark.parametrize("format_", ["jsonl", "csv"])
def test_a_clean_export_imports_with_its_positions_and_chain_and_verifies(
    source: WriteSide, target: WriteSide, format_: str, settings: Settings
) -> None:
    lines = export_lines(source, format_)
    head_line = lines[-1]
    expected_head = EventLog(source.app).head()
    assert str(expected_head) in head_line
    written = Audit(target.app).import_export(lambda: read_export(lines))
    assert written == len(positions(source))
    assert positions(target) == positions(source)
    report = Audit(target.app).verify()
    assert (report.ok, report.last_position) == (True, expected_head)
    # the same chain: a checkpoint signed over the source holds for the copy
    head_link = source.app.orderflow_recorder.link_at(expected_head)
    assert head_link is not None
    anchor = sign(Ed25519PrivateKey.generate(), expected_head, head_link, datetime.now(UTC))
    assert Audit(target.app).verify(checkpoint=anchor).ok
    # and appends go on after the imported positions
    target.app.save(InventoryItem(sku="AFTER", name="after", unit_price_cents=1))
    assert positions(target)[-1] > expected_head


def _edit_payload(lines: list[str], index: int, format_: str) -> list[str]:
    edited = list(lines)
    if format_ == "jsonl":
        fields = json.loads(edited[index])
        fields["data"] = {**fields["data"], "forged": 1}
        edited[index] = json.dumps(fields) + "\n"
    else:  # the data column is last
        row = next(csv.reader([edited[index]]))
        row[-1] = json.dumps({**json.loads(row[-1]), "forged": 1})
        out = io.StringIO(newline="")
        csv.writer(out).writerow(row)
        edited[index] = out.getvalue()
    return edited


def _position_of(line: str, format_: str, header: str) -> int:
    if format_ == "jsonl":
        return int(json.loads(line)["position"])
    columns = header.strip().split(",")
    return int(line.split(",")[columns.index("position")])


@pytest.mark.parametrize("format_", ["jsonl", "csv"])
@pytest.mark.parametrize("tampering", ["edited payload", "deleted line", "cut tail", "no head"])
def test_a_tampered_export_is_refused_naming_the_position_and_nothing_is_written(
    source: WriteSide, target: WriteSide, format_: str, tampering: str
) -> None:
    lines = export_lines(source, format_)
    header = lines[0] if format_ == "csv" else ""
    events = lines[1:-1] if format_ == "csv" else lines[:-1]
    middle = len(events) // 2
    if tampering == "edited payload":
        index = lines.index(events[middle])
        tampered = _edit_payload(lines, index, format_)
        bad = _position_of(events[middle], format_, header)
    elif tampering == "deleted line":
        tampered = [line for line in lines if line is not events[middle]]
        bad = _position_of(events[middle + 1], format_, header)
    elif tampering == "cut tail":  # the last two events gone, the head line kept
        tampered = [line for line in lines if line not in events[-2:]]
        bad = _position_of(events[-1], format_, header)
    else:  # cut short, head line and all
        tampered = lines[: lines.index(events[-1])]
        bad = _position_of(events[-2], format_, header) + 1
    with pytest.raises(ExportRefused) as refused:
        Audit(target.app).import_export(lambda: read_export(tampered))
    assert refused.value.report.first_bad_position == bad
    assert f"position {bad}" in str(refused.value)
    assert EventLog(target.app).head() == 0
    assert target.app.orderflow_recorder.chain_rows(0, 10) == []


def test_the_cli_refuses_a_tampered_file_with_exit_1_and_imports_a_clean_one(
    source: WriteSide, target: WriteSide, tmp_path: Path
) -> None:
    lines = export_lines(source, "jsonl")
    index = len(lines) // 2
    bad = json.loads(lines[index])["position"]
    (tmp_path / "clean.jsonl").write_text("".join(lines))
    (tmp_path / "tampered.jsonl").write_text("".join(_edit_payload(lines, index, "jsonl")))
    (tmp_path / "garbled.jsonl").write_text("".join(lines[:3]) + "{not json\n")
    settings = target.settings
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(settings.data_dir), COLUMNS="200")
    if settings.database_url:
        env.update(ORDERFLOW_DATABASE_URL=settings.database_url)

    def orderflow_import(name: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["audit", "import", str(tmp_path / name)], env=env)
        return result.exit_code, result.output

    code, output = orderflow_import("tampered.jsonl")
    assert code == 1
    assert f"position {bad}" in output
    assert "nothing written" in output
    code, output = orderflow_import("garbled.jsonl")
    assert (code, "line 4" in output) == (1, True)
    assert EventLog(target.app).head() == 0
    code, output = orderflow_import("clean.jsonl")
    assert code == 0, output
    assert positions(target) == positions(source)
    verified = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output


KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


def head_checkpoint(side: WriteSide, key: Ed25519PrivateKey = KEY) -> Checkpoint:
    head = EventLog(side.app).head()
    link = side.app.orderflow_recorder.link_at(head)
    assert link is not None
    return sign(key, head, link, datetime.now(UTC))


@pytest.mark.parametrize("format_", ["jsonl", "csv"])
def test_carried_checkpoints_are_checked_against_the_files_chain(
    source: WriteSide, target: WriteSide, format_: str
) -> None:
    checkpoint = head_checkpoint(source)
    lines = export_lines(source, format_, (checkpoint,))
    first_event = 2 if format_ == "csv" else 1
    # cut the last event and forge the head line so the chain alone looks complete
    events = lines[first_event:-1]
    kept = lines[: first_event + len(events) - 1]
    forger = io.StringIO(newline="")
    writer = ExportWriter(forger, format_)
    for item in read_export(kept):
        if isinstance(item, ExportedEvent):
            writer.write(item)
    writer.finish()
    forged = kept + forger.getvalue().splitlines(keepends=True)[-1:]
    with pytest.raises(ExportRefused) as refused:
        Audit(target.app).import_export(lambda: read_export(forged), KEY.public_key())
    assert refused.value.report.first_bad_position == checkpoint.position
    assert checkpoint.id in str(refused.value)
    # a checkpoint from another key is refused when the source's key is given
    alien = export_lines(source, format_, (head_checkpoint(source, Ed25519PrivateKey.generate()),))
    with pytest.raises(ExportRefused, match="the verifier holds key"):
        Audit(target.app).import_export(lambda: read_export(alien), KEY.public_key())
    assert EventLog(target.app).head() == 0
    assert Audit(target.app).import_export(lambda: read_export(lines), KEY.public_key()) > 0


def _env(settings: Settings, **extra: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ORDERFLOW_")}
    env.update(ORDERFLOW_DATA_DIR=str(settings.data_dir), COLUMNS="200", **extra)
    if settings.database_url:
        env.update(ORDERFLOW_DATABASE_URL=settings.database_url)
    return env


@pytest.mark.parametrize("format_", ["jsonl", "csv"])
def test_the_cli_export_carries_the_checkpoints_and_imports_with_the_sources_key(
    source: WriteSide, target: WriteSide, tmp_path: Path, format_: str
) -> None:
    checkpoint = head_checkpoint(source)
    CheckpointStore(source.settings.checkpoint_dir).save(checkpoint)
    exported = tmp_path / f"all.{format_}"
    run = CliRunner().invoke(
        cli,
        ["audit", "export", "--format", format_, "--output", str(exported)],
        env=_env(source.settings),
    )
    assert run.exit_code == 0, run.output
    items = list(read_export(exported.open(newline="")))
    assert isinstance(items[0], CheckpointFile)
    assert (items[0].id, items[0].position) == (checkpoint.id, EventLog(source.app).head())
    public = public_key_text(KEY.public_key())
    imported = CliRunner().invoke(
        cli,
        ["audit", "import", str(exported)],
        env=_env(target.settings, ORDERFLOW_AUDIT_PUBLIC_KEY=public),
    )
    assert imported.exit_code == 0, imported.output
    assert positions(target) == positions(source)
