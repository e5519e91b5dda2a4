"""Refunds due: what the shop owes its customers back, for operators and auditors."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from infra.http.security import require
from projections import queries
from read_api.consistency import reading, reflecting
from read_api.errors import PROBLEM_RESPONSES
from schemas.auth import Principal, Role
from schemas.reads import RefundsDuePage
from schemas.types import Currency

router = APIRouter(prefix="/refunds-due", tags=["payments"], responses=PROBLEM_RESPONSES)
staff = require(Role.OPERATOR, Role.AUDITOR)


@router.get(
    "",
    response_model=RefundsDuePage,
    description="Payments to give back, oldest first: money the payment provider took for "
    "orders that could not take it (`payment_unapplied`: ended, already paid, another "
    "amount or currency) and the payments of orders cancelled after payment "
    "(`cancelled_after_payment`, until the provider's refund arrives), with the totals "
    "per currency.",
)
def list_refunds_due(
    request: Request,
    currency: Currency | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    _who: Principal = Depends(staff),
    _: int | None = Depends(reflecting("refunds_due")),
) -> RefundsDuePage:
    with reading(request) as tx:
        items, next_cursor = queries.refunds_due_page(tx, currency, limit, cursor)
        totals = queries.refund_totals(tx)
    return RefundsDuePage.model_validate(
        {"items": items, "totals": totals, "next_cursor": next_cursor}
    )
