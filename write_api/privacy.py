"""Forgetting a customer: their data key is destroyed, so their personal fields are
unreadable everywhere they were stored sealed (ADR 0023). Admins only."""

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from infra.http.security import require
from schemas.auth import Principal, Role
from schemas.privacy import PersonalDataForgotten
from schemas.types import CustomerId
from write_api.errors import PROBLEM_RESPONSES

router = APIRouter(prefix="/customers", tags=["privacy"], responses=PROBLEM_RESPONSES)
admin = require(Role.ADMIN)


@router.delete("/{customer_id}/personal-data", response_model=PersonalDataForgotten)
async def forget_customer(
    customer_id: CustomerId, request: Request, who: Principal = Depends(admin)
) -> PersonalDataForgotten:
    """Destroys the customer's data key and records who did it and when. History, past
    states and exports show their personal fields as null, named in `redacted`; the audit
    chain still verifies. Forgetting again destroys nothing more (`keys_destroyed` 0)."""
    app = request.app.state.write_side.app
    done = await run_in_threadpool(app.forget_personal_data, customer_id, who.sub)
    return PersonalDataForgotten(
        customer_id=customer_id,
        keys_destroyed=done.keys_destroyed,
        forgotten_at=done.forgotten_at,
        actor=done.actor,
    )
