"""What auditors ask of the event store: histories, the log, past states, the chain.

Reads only; the one write is an import into an empty store."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import DomainEvent

from commands.errors import NotFound
from domain.base_error import OrderFlowError
from domain.inventory import InventoryItem
from domain.order import Order
from infra.audit.chain import GENESIS, Verification, verify
from infra.audit.chain_import import ChainedEvent, write_chain
from infra.audit.checkpoint import Checkpoint, reach
from infra.audit.export import ExportItem
from infra.audit.export_chain import check_export, stored_state
from infra.eventstore.envelopes import TOPIC_BY_TYPE, reveal, to_envelope, to_stored_event
from infra.eventstore.event_store import OrderFlowApplication
from infra.eventstore.recorded import AuditFilter, LoggedEvent
from schemas.audit import ExportedEvent
from schemas.envelope import Envelope

A = TypeVar("A", Order, InventoryItem)
Progress = Callable[[Verification], None]


class UnknownEventType(OrderFlowError):
    code = "unknown-event-type"

    def __init__(self, name: str) -> None:
        super().__init__(f"no event type {name!r}")


class NotAtThatTime(NotFound):
    code = "not-yet-existing"


class StoreNotEmpty(OrderFlowError):
    code = "store-not-empty"


class ExportRefused(OrderFlowError):
    code = "export-refused"

    def __init__(self, report: Verification) -> None:
        super().__init__(
            f"refused, nothing written: position {report.first_bad_position}: {report.reason}"
        )
        self.report = report


class Audit:
    def __init__(self, app: OrderFlowApplication) -> None:
        self._app = app
        self._recorder = app.orderflow_recorder
        self._transcoder = app.mapper.transcoder

    def _envelopes(self, logged: Iterable[LoggedEvent], *, sealed: bool) -> list[Envelope]:
        """Personal fields opened for people to read, or left sealed as stored (exports:
        a file outlives a forgetting, so it never holds clear text)."""
        envelopes = [
            to_envelope(e.notification, self._transcoder, e.previous_position) for e in logged
        ]
        if sealed:
            return envelopes
        return [reveal(envelope, self._app.personal_keys) for envelope in envelopes]

    def events(
        self,
        after: int = 0,
        limit: int = 100,
        aggregate_id: UUID | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        sealed: bool = False,
    ) -> list[Envelope]:
        unknown = [t for t in types if t not in TOPIC_BY_TYPE]
        if unknown:
            raise UnknownEventType(unknown[0])
        query = AuditFilter(
            after, limit, aggregate_id, tuple(TOPIC_BY_TYPE[t] for t in types), since, until
        )
        return self._envelopes(self._recorder.logged_events(query), sealed=sealed)

    def stream(
        self, since: datetime | None = None, until: datetime | None = None, batch: int = 2000
    ) -> Iterator[Envelope]:
        """The whole range, as stored (personal fields sealed), a page at a time: memory
        stays bounded by one page."""
        after = 0
        while page := self.events(after, batch, since=since, until=until, sealed=True):
            yield from page
            after = page[-1].position

    def history(self, aggregate_id: UUID) -> list[Envelope]:
        found: list[Envelope] = []
        while page := self.events(found[-1].position if found else 0, 1000, aggregate_id):
            found.extend(page)
        return found

    def redacted(self, aggregate_id: UUID) -> list[str]:
        """The aggregate's personal fields that were forgotten (their key destroyed)."""
        return sorted({name for e in self.history(aggregate_id) for name in e.redacted})

    def state(
        self,
        kind: type[A],
        aggregate_id: UUID,
        as_of: datetime | None = None,
        version: int | None = None,
    ) -> A:
        """The aggregate as it was after `version`, or after its last event at or before
        `as_of`; given both, both bounds hold (the earlier of the two states). Snapshots
        never newer than that version are the only ones used."""
        if as_of is not None:
            at_time = self._version_at(aggregate_id, as_of)
            version = at_time if version is None else min(version, at_time)
        try:
            found: object = self._app.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"no {kind.__name__} {aggregate_id}") from None
        if not isinstance(found, kind):
            raise NotFound(f"no {kind.__name__} {aggregate_id}")
        return found

    def _version_at(self, aggregate_id: UUID, as_of: datetime) -> int:
        version = 0
        for event in self._app.events.get(aggregate_id):
            assert isinstance(event, DomainEvent)
            if event.timestamp > as_of:
                break
            version = event.originator_version
        if version == 0:
            raise NotAtThatTime(f"{aggregate_id} did not exist at {as_of.isoformat()}")
        return version

    def verify(
        self,
        after: int = 0,
        batch: int = 5000,
        progress: Progress | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> Verification:
        """Walks the chain from `after` (0, or a position verified before: resumable). With
        a checkpoint (whose signature the caller checked), the walk from the start must
        pass through its position with its hash: a log cut or rewritten since fails."""
        start = GENESIS if after == 0 else self._recorder.link_at(after)
        if start is None:
            raise NotFound(f"no link at position {after} to resume from")
        state = Verification(last_position=after, last_hash=start)
        if checkpoint is not None:
            if after != 0:
                raise ValueError("a checkpoint is checked from the start of the log")
            state.checkpoint = checkpoint.id
            state = reach(checkpoint, self._walk(state, batch, progress, checkpoint.position))
        return self._walk(state, batch, progress)

    def _walk(
        self, state: Verification, batch: int, progress: Progress | None, until: int | None = None
    ) -> Verification:
        while state.ok:
            rows = self._recorder.chain_rows(state.last_position, batch)
            if until is not None:
                rows = [row for row in rows if row.position <= until]
            if not rows:
                break
            state = verify(rows, state)
            if progress:
                progress(state)
        return state

    def head(self) -> int:
        return self._app.recorder.max_notification_id() or 0

    def exported(
        self, since: datetime | None = None, until: datetime | None = None, batch: int = 2000
    ) -> Iterator[ExportedEvent]:
        """The range as exported: each envelope with its stored bytes and link."""
        after = 0
        while page := self._recorder.logged_events(
            AuditFilter(after, batch, since=since, until=until)
        ):
            for logged in page:
                envelope = to_envelope(
                    logged.notification, self._transcoder, logged.previous_position
                )
                yield ExportedEvent(
                    **envelope.model_dump(),
                    recorded_at=logged.recorded_at,
                    topic=logged.notification.topic,
                    hash=logged.hash.hex(),
                    state=base64.b64encode(logged.notification.state).decode(),
                )
            after = page[-1].notification.id

    def import_export(
        self, read: Callable[[], Iterable[ExportItem]], public: Ed25519PublicKey | None = None
    ) -> int:
        """Checks the whole file (`read` opens it afresh) and, only if its chain holds from
        the start of the log to its head line, writes it into this EMPTY store keeping
        positions, links and times: the same chain as the store it came from. With the
        source's public key, the checkpoints the file carries must be signed by it."""
        if self.head() != 0:
            raise StoreNotEmpty("import writes into an empty event store only")
        report = check_export(read(), self._transcoder, public)
        if not report.ok:
            raise ExportRefused(report)
        return write_chain(
            self._recorder,
            (
                ChainedEvent(
                    e.position,
                    e.aggregate_id,
                    e.version,
                    e.topic,
                    stored_state(e),
                    e.previous_position,
                    bytes.fromhex(e.hash),
                    e.recorded_at,
                )
                for e in read()
                if isinstance(e, ExportedEvent)
            ),
        )

    def import_envelopes(self, envelopes: Iterable[Envelope], batch: int = 2000) -> int:
        """Envelopes without a chain (exports made before exports carried one) into an empty
        store: aggregate ids, versions and payloads are kept, positions are numbered anew
        and a new chain is built. Nothing vouches for such a file."""
        if self.head() != 0:
            raise StoreNotEmpty("import writes into an empty event store only")
        written, pending = 0, []
        for envelope in envelopes:
            pending.append(to_stored_event(envelope, self._transcoder))
            if len(pending) >= batch:
                self._recorder.insert_events(pending)
                written, pending = written + len(pending), []
        if pending:
            self._recorder.insert_events(pending)
            written += len(pending)
        return written
