"""Checkpoints on disk, the keys that sign them, and taking one.

A directory of JSON files, one per checkpoint, outside the event tables: whoever rewrites
the database must also reach these files (keep a copy elsewhere: `--output`, backups) and
still cannot forge the signature."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from commands.errors import NotFound
from domain.base_error import OrderFlowError
from infra.audit.chain import Verification
from infra.audit.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    check_signature,
    from_json,
    private_key,
    public_key,
    sign,
    to_json,
)
from infra.audit.queries import Audit
from infra.retrying import run_until_stopped
from infra.settings import Settings
from schemas.audit import CheckpointFile

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,99}")


class UnknownCheckpoint(NotFound):
    code = "unknown-checkpoint"


class NoCheckpointKey(OrderFlowError):
    code = "checkpoint-key-missing"


class NothingToCheckpoint(RuntimeError):
    pass


class ChainBroken(RuntimeError):
    def __init__(self, report: Verification) -> None:
        super().__init__(f"not signed: position {report.first_bad_position}: {report.reason}")
        self.report = report


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    try:
        return private_key(settings.checkpoint_signing_key)
    except RuntimeError as missing:
        raise NoCheckpointKey(str(missing)) from None


def verifying_key(settings: Settings) -> Ed25519PublicKey:
    if settings.audit_public_key is not None:
        return public_key(settings.audit_public_key)
    try:
        return signing_key(settings).public_key()
    except NoCheckpointKey:
        raise NoCheckpointKey(
            "set ORDERFLOW_AUDIT_PUBLIC_KEY (or the signing key) to verify checkpoints"
        ) from None


class CheckpointStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, checkpoint: Checkpoint) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{checkpoint.id}.json"
        partial = path.with_suffix(".part")
        partial.write_text(to_json(checkpoint) + "\n")
        os.replace(partial, path)  # a reader never sees half a file
        return path

    def load(self, checkpoint_id: str) -> Checkpoint:
        path = self.directory / f"{checkpoint_id}.json"
        if not _ID.fullmatch(checkpoint_id) or not path.is_file():
            raise UnknownCheckpoint(f"no checkpoint {checkpoint_id!r}")
        return from_json(path.read_bytes())

    def ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def files(self, up_to: int) -> list[CheckpointFile]:
        """The readable checkpoints at or before a position, as their files say (unchecked)."""
        found = []
        for checkpoint_id in self.ids():
            path = self.directory / f"{checkpoint_id}.json"
            try:
                carried = CheckpointFile.model_validate_json(path.read_bytes())
            except ValueError:
                log.warning("checkpoint file %s is not readable; not exported", checkpoint_id)
                continue
            if carried.position <= up_to:
                found.append(carried)
        return found

    def latest_valid(self, public: Ed25519PublicKey) -> Checkpoint | None:
        """The furthest checkpoint whose signature holds; forged or damaged files are
        skipped, with a warning."""
        best: Checkpoint | None = None
        for checkpoint_id in self.ids():
            try:
                found = self.load(checkpoint_id)
                check_signature(found, public)
            except InvalidCheckpoint as bad:
                log.warning("checkpoint file %s ignored: %s", checkpoint_id, bad.detail)
                continue
            if best is None or found.position >= best.position:
                best = found
        return best


def take(audit: Audit, key: Ed25519PrivateKey, store: CheckpointStore, now: datetime) -> Checkpoint:
    """Walks the whole chain, also through the latest earlier checkpoint (so a rewrite since
    then is refused, not signed), and signs where it ends."""
    previous = store.latest_valid(key.public_key())
    report = audit.verify(checkpoint=previous)
    if not report.ok:
        raise ChainBroken(report)
    if report.last_position == 0:
        raise NothingToCheckpoint("the event store is empty: nothing to sign")
    checkpoint = sign(key, report.last_position, report.last_hash, now)
    store.save(checkpoint)
    return checkpoint


class Checkpointer:
    """The worker's periodic checkpoint; a tick with no new events signs nothing."""

    def __init__(
        self,
        audit: Audit,
        key: Ed25519PrivateKey,
        store: CheckpointStore,
        interval: timedelta,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.audit, self.key, self.store = audit, key, store
        self.interval, self.clock = interval, clock
        self.stop_event = threading.Event()

    def run_once(self) -> Checkpoint | None:
        latest = self.store.latest_valid(self.key.public_key())
        if self.audit.head() == 0 or (latest and latest.position == self.audit.head()):
            return None
        try:
            taken = take(self.audit, self.key, self.store, self.clock())
        except ChainBroken as broken:
            log.error("audit checkpoint refused: %s", broken)
            return None
        log.info("audit checkpoint %s signed at position %s", taken.id, taken.position)
        return taken

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            self.run_once()
            self.stop_event.wait(self.interval.total_seconds())

    def start(self) -> threading.Thread | None:
        """Runs in a thread of its own; None when the interval is 0 (turned off)."""
        if self.interval <= timedelta(0):
            return None
        thread = threading.Thread(
            target=run_until_stopped,
            args=(self._loop, self.stop_event, log, "audit checkpointer"),
            name="audit-checkpointer",
            daemon=True,
        )
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
