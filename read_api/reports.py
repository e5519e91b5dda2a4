"""Sales reports from the ClickHouse read models (chDB when embedded).

Like every read, a report carries the position it reflects (X-Projection-Position) and
honours `min_position` / `wait_ms`; the position is the reporting projection's own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import APIRouter, Depends, FastAPI, Query, Request

from infra.clickhouse.client import ReportingUnavailable
from infra.http.errors import store_unavailable
from infra.http.security import require
from projections import reporting_queries as queries
from projections.reporting_projector import ReportingProjector
from read_api.consistency import MinPosition, WaitMs, awaited
from read_api.errors import PROBLEM_RESPONSES
from schemas.auth import Principal, Role
from schemas.reports import DailySalesReport, OrderFunnelReport, TopSkusReport
from schemas.types import IsoDate

router = APIRouter(prefix="/reports", tags=["reports"], responses=PROBLEM_RESPONSES)
readers = require(Role.OPERATOR, Role.AUDITOR)


def _runner(request: Request) -> ReportingProjector:
    runner: ReportingProjector = request.app.state.read_side.reporting
    return runner


async def reporting_position(
    request: Request, min_position: MinPosition = None, wait_ms: WaitMs = 2000
) -> int:
    """The reporting projection's position; with `min_position`, waits up to `wait_ms`
    for it, else 503 projection-lag."""
    return await awaited(request, _runner(request).position, min_position, wait_ms)


@dataclass(frozen=True)
class Days:
    first: date | None
    last: date | None


def days(
    first: Annotated[
        IsoDate | None, Query(alias="from", description="first day (UTC), inclusive")
    ] = None,
    last: Annotated[
        IsoDate | None, Query(alias="to", description="last day (UTC), inclusive")
    ] = None,
) -> Days:
    return Days(first, last)  # `from` after `to` is an empty range: no days, no rows


@router.get("/daily-sales", response_model=DailySalesReport)
def daily_sales(
    request: Request,
    range_: Days = Depends(days),
    _who: Principal = Depends(readers),
    _: int = Depends(reporting_position),
) -> DailySalesReport:
    """Paid orders by the UTC day they were paid: orders, units, revenue."""
    items = queries.daily_sales(_runner(request).client, range_.first, range_.last)
    return DailySalesReport.model_validate({"items": items})


@router.get("/top-skus", response_model=TopSkusReport)
def top_skus(
    request: Request,
    range_: Days = Depends(days),
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    by: Annotated[Literal["revenue", "units"], Query(description="rank by")] = "revenue",
    _who: Principal = Depends(readers),
    _: int = Depends(reporting_position),
) -> TopSkusReport:
    """The SKUs of orders paid in the range, best first."""
    items = queries.top_skus(_runner(request).client, range_.first, range_.last, limit, by)
    return TopSkusReport.model_validate({"items": items})


@router.get("/order-funnel", response_model=OrderFunnelReport)
def order_funnel(
    request: Request,
    range_: Days = Depends(days),
    _who: Principal = Depends(readers),
    _: int = Depends(reporting_position),
) -> OrderFunnelReport:
    """Orders created in the range: how many reached each status, how many are in it now,
    then the refund_due stage (orders that owed, and still owe, money back), and the
    share cancelled."""
    funnel = queries.order_funnel(_runner(request).client, range_.first, range_.last)
    return OrderFunnelReport.model_validate(funnel)


def install(app: FastAPI) -> None:
    """Adds the reports and answers an unreachable ClickHouse with 503 problems."""
    app.include_router(router)
    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(ReportingUnavailable, store_unavailable)
