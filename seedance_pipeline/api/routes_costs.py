"""`/v1/costs`: the ledger's report, for the caller's tenant only."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from seedance_pipeline.api.routes_jobs import ERRORS, invalid
from seedance_pipeline.api.state import State, Tenant
from seedance_pipeline.clients.costs import cost_report, day_window
from seedance_pipeline.core.api_schema import CostLineBody, CostReportBody, FieldError

router = APIRouter(prefix="/v1", tags=["costs"], responses=ERRORS)


@router.get("/costs", response_model=CostReportBody, summary="What your jobs cost")
async def costs(
    tenant: Tenant,
    state: State,
    since: Annotated[date | None, Query(description="first UTC day, included")] = None,
    until: Annotated[date | None, Query(description="last UTC day, included")] = None,
    by: Annotated[Literal["day", "model", "route", "outcome"], Query()] = "day",
) -> CostReportBody:
    """Jobs, seconds of video, tokens and cost per currency (never summed across
    currencies); only billed attempts count towards cost."""
    try:
        start, end = day_window(since, until)
    except ValueError as exc:
        raise invalid([FieldError(field="until", message=str(exc))]) from None
    ledger = await state.ledger()
    entries = await asyncio.to_thread(ledger.entries, start, end, tenant)
    report = cost_report(entries, by, since, until)
    return CostReportBody(
        tenant=tenant,
        by=by,
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        lines=[CostLineBody(**line.as_dict()) for line in report.lines],
        totals=[CostLineBody(**line.as_dict()) for line in report.totals],
    )
