"""The auditors' view: the event store itself, read only, never a projection."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from commands.errors import UnknownOrder, UnknownSku
from domain.inventory import InventoryItem
from domain.order import Order
from infra.audit.chain import Verification
from infra.audit.checkpoint import Checkpoint, InvalidCheckpoint, check_signature, from_json
from infra.audit.checkpoints import CheckpointStore, verifying_key
from infra.audit.queries import Audit
from infra.eventstore.envelopes import TOPIC_BY_TYPE
from infra.http.security import require
from read_api.errors import PROBLEM_RESPONSES, BothAfterAndCheckpoint
from schemas.audit import (
    CheckpointFile,
    CheckpointInfo,
    CheckpointList,
    EventPage,
    History,
    ItemState,
    OrderState,
    VerifyReport,
)
from schemas.auth import Principal, Role
from schemas.responses import PricedLine
from schemas.types import MAX_POSITION, IsoDateTime, Sku

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES)
auditor = require(Role.AUDITOR)
AsOf = Annotated[
    IsoDateTime | None,
    Query(description="RFC 3339 time; the state after the last event at or before it"),
]
Version = Annotated[
    int | None, Query(ge=1, le=MAX_POSITION, description="the state after this version")
]


def audit(request: Request) -> Audit:
    found: Audit = request.app.state.read_side.audit
    return found


@router.get("/events", response_model=EventPage)
def events(
    after_position: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    aggregate_id: UUID | None = None,
    type: Annotated[
        list[str] | None,
        Query(
            description="event types, repeatable",
            json_schema_extra={"items": {"type": "string", "enum": sorted(TOPIC_BY_TYPE)}},
        ),
    ] = None,
    since: IsoDateTime | None = None,
    until: IsoDateTime | None = None,
    _: Principal = Depends(auditor),
    log: Audit = Depends(audit),
) -> EventPage:
    """The global log by position, with filters; `until` is exclusive. Times filter on
    when each event was recorded."""
    items = log.events(after_position, limit, aggregate_id, type or (), since, until)
    return EventPage(items=items, next_position=items[-1].position if items else after_position)


@router.get("/orders/{order_id}/history", response_model=History)
def order_history(
    order_id: UUID, _: Principal = Depends(auditor), log: Audit = Depends(audit)
) -> History:
    items = log.history(order_id)
    if not items or items[0].aggregate_type != "order":
        raise UnknownOrder(order_id)
    return History(items=items)


@router.get("/inventory/{sku}/history", response_model=History)
def item_history(sku: Sku, _: Principal = Depends(auditor), log: Audit = Depends(audit)) -> History:
    items = log.history(InventoryItem.create_id(sku))
    if not items:
        raise UnknownSku(sku)
    return History(items=items)


@router.get("/orders/{order_id}/state", response_model=OrderState)
def order_state(
    order_id: UUID,
    as_of: AsOf = None,
    version: Version = None,
    _: Principal = Depends(auditor),
    log: Audit = Depends(audit),
) -> OrderState:
    order = log.state(Order, order_id, as_of, version)
    return OrderState(
        order_id=order.id,
        customer_id=order.customer_id,
        status=order.status,
        currency=order.currency,
        total_cents=order.total_cents,
        lines=[PricedLine(**line) for line in order.lines],
        payment_ref=order.payment_ref,
        refund_due=order.refund_due,
        version=order.version,
        shipping_address=order.shipping_address,
        redacted=log.redacted(order.id),
    )


@router.get("/inventory/{sku}/state", response_model=ItemState)
def item_state(
    sku: Sku,
    as_of: AsOf = None,
    version: Version = None,
    _: Principal = Depends(auditor),
    log: Audit = Depends(audit),
) -> ItemState:
    item = log.state(InventoryItem, InventoryItem.create_id(sku), as_of, version)
    return ItemState(
        sku=item.sku,
        name=item.name,
        unit_price_cents=item.unit_price_cents,
        on_hand=item.on_hand,
        reserved=item.reserved,
        available=item.available,
        version=item.version,
    )


def checkpoints(request: Request) -> CheckpointStore:
    return CheckpointStore(request.app.state.read_side.settings.checkpoint_dir)


def _verified_against(request: Request, log: Audit, checkpoint: Checkpoint) -> VerifyReport:
    """The store checked against a checkpoint; a checkpoint the configured key did not
    sign is a failed verification (as the CLI reports it), not a malformed request."""
    try:
        check_signature(checkpoint, verifying_key(request.app.state.read_side.settings))
    except InvalidCheckpoint as forged:
        return VerifyReport(
            ok=False,
            checked=0,
            reason=f"checkpoint refused: {forged}",
            last_position=0,
            checkpoint=checkpoint.id,
        )
    return _report(log.verify(checkpoint=checkpoint))


def _report(result: Verification) -> VerifyReport:
    return VerifyReport(
        ok=result.ok,
        checked=result.checked,
        first_bad_position=result.first_bad_position,
        reason=result.reason,
        last_position=result.last_position,
        checkpoint=result.checkpoint,
    )


@router.get("/verify", response_model=VerifyReport)
def verify_chain(
    request: Request,
    after_position: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    checkpoint: Annotated[
        str | None,
        Query(
            description="The id of a checkpoint in the checkpoint directory: its signature "
            "must hold and the store must still reach its position with its hash"
        ),
    ] = None,
    _: Principal = Depends(auditor),
    log: Audit = Depends(audit),
    kept: CheckpointStore = Depends(checkpoints),
) -> VerifyReport:
    """Walks the tamper-evident chain from the start (or resumes after a verified
    position) and reports the first break; with a checkpoint, also a log cut or rewritten
    since it was signed."""
    if checkpoint is None:
        return _report(log.verify(after_position))
    anchor = kept.load(checkpoint)  # an unknown one is 404 first
    if after_position:
        raise BothAfterAndCheckpoint
    return _verified_against(request, log, anchor)


@router.post("/verify", response_model=VerifyReport)
def verify_against_uploaded_checkpoint(
    request: Request,
    uploaded: CheckpointFile,
    _: Principal = Depends(auditor),
    log: Audit = Depends(audit),
) -> VerifyReport:
    """As GET with a checkpoint, for a checkpoint file the auditor kept (the body is the
    file's JSON). Reads only: nothing is stored."""
    return _verified_against(request, log, from_json(uploaded.model_dump_json()))


@router.get("/checkpoints", response_model=CheckpointList)
def list_checkpoints(
    _: Principal = Depends(auditor), kept: CheckpointStore = Depends(checkpoints)
) -> CheckpointList:
    """The checkpoints in the checkpoint directory, oldest first (not checked here)."""
    items = []
    for checkpoint_id in kept.ids():
        try:
            found = kept.load(checkpoint_id)
        except InvalidCheckpoint:
            continue  # a damaged file: GET /audit/verify?checkpoint= says why
        items.append(
            CheckpointInfo(
                id=found.id,
                position=found.position,
                head_hash=found.head_hash.hex(),
                created_at=found.created_at,
                key_id=found.key_id,
            )
        )
    return CheckpointList(items=items)
