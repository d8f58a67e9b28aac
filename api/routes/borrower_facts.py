"""Recording eligibility facts about a registered person (extension): SYB training, the approval of
its business plan, the graduation year. `POST /borrowers/{id}/eligibility-facts`."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from litestar import Request, Router, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from api.body import decode_body, with_body
from api.context import RequestContext
from api.routes.borrowers import REGISTER, BorrowerOut, borrower_out, scoped_borrower
from api.types import Year
from loanfund.borrowers import facts

Ctx = NamedDependency[RequestContext]


class EligibilityFactsIn(msgspec.Struct, forbid_unknown_fields=True):
    syb_trained: bool | None = None
    syb_plan_approved_on: date | None = None
    graduation_year: Year | None = None


@post(
    "/borrowers/{borrower_id:str}/eligibility-facts",
    operation_class=with_body(EligibilityFactsIn),
    status_code=200,
)
async def record_eligibility_facts(
    ctx: Ctx, borrower_id: FromPath[str], request: Request[Any, Any, Any]
) -> BorrowerOut:
    """Set the facts given (others stay); each application is judged by the facts as of its own date."""
    await scoped_borrower(ctx, borrower_id, REGISTER)
    body = await decode_body(request, EligibilityFactsIn)
    borrower = await facts.record_facts(
        ctx.tx,
        borrower_id,
        syb_trained=body.syb_trained,
        syb_plan_approved_on=body.syb_plan_approved_on,
        graduation_year=body.graduation_year,
    )
    return await borrower_out(ctx, borrower, full_id=False)


router = Router(path="/", route_handlers=[record_eligibility_facts])
