"""`orderflow audit`: the auditors' tools over the event store's tamper-evident log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.progress import Progress

from domain.order import Order
from infra.audit.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    check_signature,
    from_json,
    key_id,
    public_key,
    public_key_text,
)
from infra.audit.checkpoint import to_json as checkpoint_json
from infra.audit.checkpoints import (
    ChainBroken,
    CheckpointStore,
    NoCheckpointKey,
    NothingToCheckpoint,
    signing_key,
    verifying_key,
)
from infra.audit.checkpoints import take as take_checkpoint
from infra.audit.export import ExportItem, ExportWriter, UnreadableExport, read_export
from infra.audit.queries import Audit, ExportRefused, StoreNotEmpty
from infra.cli.console import bar_columns, console
from infra.cli.times import moment
from infra.eventstore.event_store import open_event_store
from infra.settings import Settings
from schemas.audit import OrderState, VerifyReport

audit_cli = typer.Typer(
    help="Auditors' tools: history, past states, export, import, verify, checkpoints.",
    no_args_is_help=True,
)


def _audit() -> Audit:
    return Audit(open_event_store(Settings()))


@audit_cli.command("history")
def audit_history(order_id: Annotated[UUID, typer.Argument(help="The order.")]) -> None:
    """The order's events in version order, one JSON envelope per line."""
    for envelope in _audit().history(order_id):
        print(envelope.model_dump_json())


@audit_cli.command("state")
def audit_state(
    order_id: Annotated[UUID, typer.Argument(help="The order.")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 time.")] = None,
    version: Annotated[int | None, typer.Option(help="A version instead of a time.")] = None,
) -> None:
    """The order as it was, rebuilt from the event store."""
    if as_of is not None and version is not None:
        raise typer.BadParameter("give --as-of or --version, not both")
    log = _audit()
    order = log.state(Order, order_id, moment(as_of), version)
    # the order's attributes carry the answer's names; the read API answers the same model
    attributes = OrderState.model_fields.keys() - {"order_id", "redacted"}
    state = OrderState.model_validate(
        {name: getattr(order, name) for name in attributes}
        | {"order_id": order.id, "redacted": log.redacted(order_id)}
    )
    print(state.model_dump_json())


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@audit_cli.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="Recorded at or after (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Recorded before (RFC 3339).")] = None,
    format_: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(help="A file (default: stdout).")] = None,
) -> None:
    """Stream any range of the log, each event with its link hash, ending with the head;
    memory stays bounded by one page. A complete export starts with the signed checkpoints."""
    log = _audit()
    head = log.head()
    stream = log.exported(moment(since), moment(until))
    with output.open("w", newline="") if output else nullcontext(sys.stdout) as out:
        writer = ExportWriter(out, format_)
        if since is None and until is None:
            for carried in CheckpointStore(Settings().checkpoint_dir).files(up_to=head):
                writer.carry(carried)
        if output is None:
            for event in stream:
                writer.write(event)
            writer.finish()
            return
        with Progress(*bar_columns("export"), console=console) as bar:
            task = bar.add_task("export", total=max(log.head(), 1))
            for event in stream:
                writer.write(event)
                bar.update(task, completed=event.position)
            bar.update(task, completed=max(log.head(), 1))
        writer.finish()


@audit_cli.command("import")
def audit_import(source: Annotated[Path, typer.Argument(help="A complete export.")]) -> None:
    """Check the whole file's chain, then load it into an EMPTY event store keeping its
    positions and links; a file whose chain breaks is refused (exit 1), nothing written."""

    def read() -> Iterator[ExportItem]:
        with source.open(newline="") as lines:
            yield from read_export(lines)

    configured = Settings().audit_public_key
    try:
        written = _audit().import_export(read, public_key(configured) if configured else None)
    except (ExportRefused, UnreadableExport, StoreNotEmpty) as refused:
        console.print(f"[red]{refused}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"imported {written} events")


def _checkpoint_file(path: Path) -> Checkpoint:
    try:
        checkpoint = from_json(path.read_bytes())
        check_signature(checkpoint, verifying_key(Settings()))
    except (OSError, InvalidCheckpoint, NoCheckpointKey) as bad:
        refused = VerifyReport(
            ok=False, checked=0, reason=str(bad), last_position=0, checkpoint=str(path)
        )
        print(refused.model_dump_json())
        raise typer.Exit(1) from None
    return checkpoint


@audit_cli.command("verify")
def audit_verify(
    after: Annotated[int, typer.Option(help="Resume after a position verified before.")] = 0,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A signed checkpoint the store must still reach (from the start)."),
    ] = None,
) -> None:
    """Walk the tamper-evident chain; exit 1 at the first break, or when the store no
    longer reaches the checkpoint's position with its hash."""
    if checkpoint is not None and after:
        raise typer.BadParameter("a checkpoint is checked from the start: drop --after")
    anchor = _checkpoint_file(checkpoint) if checkpoint else None
    log = _audit()
    with Progress(*bar_columns("verify"), console=console) as bar:
        task = bar.add_task("verify", total=max(log.head(), 1))
        result = log.verify(
            after,
            progress=lambda s: bar.update(task, completed=s.last_position),
            checkpoint=anchor,
        )
    print(VerifyReport.model_validate(result, from_attributes=True).model_dump_json())
    if not result.ok:
        raise typer.Exit(1)


@audit_cli.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None, typer.Option(help="Also write it here (default: stdout).")
    ] = None,
) -> None:
    """Verify the chain and sign its head (position, hash, time) with the Ed25519 key; kept
    in the checkpoint directory. Exit 1 when the chain is broken: nothing is signed."""
    settings = Settings()
    try:
        taken = take_checkpoint(
            _audit(),
            signing_key(settings),
            CheckpointStore(settings.checkpoint_dir),
            datetime.now(UTC),
        )
    except (ChainBroken, NothingToCheckpoint, NoCheckpointKey) as refused:
        console.print(f"[red]{refused}[/]", soft_wrap=True)
        raise typer.Exit(1) from None
    if output is None:
        print(checkpoint_json(taken))
    else:
        output.write_text(checkpoint_json(taken) + "\n")
    console.print(f"checkpoint {taken.id}: position {taken.position} in {settings.checkpoint_dir}")


@audit_cli.command("public-key")
def audit_public_key() -> None:
    """The checkpoints' public key (base64) for verifiers: ORDERFLOW_AUDIT_PUBLIC_KEY."""
    try:
        public = verifying_key(Settings())
    except NoCheckpointKey as missing:
        console.print(f"[red]{missing}[/]")
        raise typer.Exit(1) from None
    print(public_key_text(public))
    console.print(f"key id {key_id(public)}")
