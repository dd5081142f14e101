"""`/v1/batches`: many jobs in one request, every row validated before any starts."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from seedance_pipeline.api.errors import ApiError, not_found
from seedance_pipeline.api.jobs import BATCH_SIZE_MEMO, KeyReused, key_problem, list_query
from seedance_pipeline.api.jobs import summary_of as summarise
from seedance_pipeline.api.routes_jobs import (
    ERRORS,
    NOT_FOUND,
    absolute,
    invalid,
    request_problems,
    webhook_problems,
)
from seedance_pipeline.api.state import State, Tenant
from seedance_pipeline.core.api_schema import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    BatchCreate,
    BatchProgress,
    FieldError,
    JobCreate,
    JobSummary,
)
from seedance_pipeline.core.app_webhooks import job_path
from seedance_pipeline.core.models import JobLinks, metadata_problem
from seedance_pipeline.core.settings import Settings

STARTS_IN_FLIGHT = 16
BATCH_ID = re.compile(r"b-[0-9a-f]{20}")
router = APIRouter(prefix="/v1", tags=["batches"], responses=ERRORS)


def batch_id_for(tenant: str, key: str | None) -> str:
    if key is None:
        return f"b-{uuid.uuid4().hex[:20]}"
    return "b-" + hashlib.sha256(f"{tenant}\n{key}".encode()).hexdigest()[:20]


def row_job_id(tenant: str, batch_id: str, index: int) -> str:
    return f"{tenant}:{batch_id}-{index:05d}"


def effective_rows(body: BatchCreate) -> list[JobCreate]:
    """Each row with the batch's defaults applied (webhook URL, metadata under the row's)."""
    rows = []
    for row in body.rows:
        update: dict[str, object] = {"metadata": {**body.metadata, **row.metadata}}
        if row.webhook_url is None and body.webhook_url is not None:
            update["webhook_url"] = body.webhook_url
        rows.append(row.model_copy(update=update))
    return rows


async def batch_problems(rows: list[JobCreate], settings: Settings) -> list[FieldError]:
    problems: list[FieldError] = []
    if len(rows) > settings.api.max_batch_rows:
        problems.append(
            FieldError(
                field="rows",
                message=f"{len(rows)} rows; at most {settings.api.max_batch_rows} per batch",
            )
        )
        return problems
    for index, row in enumerate(rows):
        prefix = f"rows[{index}]."
        problems += request_problems(row, settings, prefix)
        meta = metadata_problem(row.metadata)
        if meta:
            problems.append(FieldError(field=f"{prefix}metadata", message=meta))
        problems += await webhook_problems(row.webhook_url, settings, f"{prefix}webhook_url")
    return problems


@router.post(
    "/batches",
    status_code=201,
    response_model=BatchProgress,
    responses={200: {"model": BatchProgress, "description": "replayed"}},
    summary="Create a batch of jobs",
)
async def create_batch(
    body: BatchCreate,
    tenant: Tenant,
    state: State,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias=IDEMPOTENCY_HEADER)] = None,
) -> BatchProgress:
    """All rows are checked first and every problem is reported (`rows[3].duration`); if any
    row is invalid, nothing starts. With an `Idempotency-Key`, sending the batch again (after
    a timeout, say) starts only what is missing."""
    rows = effective_rows(body)
    problems = await batch_problems(rows, state.settings)
    if idempotency_key is not None and (problem := key_problem(idempotency_key)):
        problems.append(FieldError(field=IDEMPOTENCY_HEADER, message=problem))
    if problems:
        raise invalid(problems)
    jobs = await state.jobs()
    batch_id = batch_id_for(tenant, idempotency_key)
    fingerprint = body.fingerprint()
    gate = asyncio.Semaphore(STARTS_IN_FLIGHT)

    async def start(index: int, row: JobCreate) -> bool:
        async with gate:
            created = await jobs.create(
                tenant,
                row,
                job_id=row_job_id(tenant, batch_id, index),
                fingerprint=fingerprint,
                batch=batch_id,
                memo={BATCH_SIZE_MEMO: len(rows)},
            )
            return created.replayed

    try:
        replayed = await asyncio.gather(*(start(i, row) for i, row in enumerate(rows)))
    except KeyReused:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {idempotency_key!r} was used for a batch with another body",
            [FieldError(field=IDEMPOTENCY_HEADER, message="used with another body")],
        ) from None
    if all(replayed):
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
    response.headers["Location"] = f"/v1/batches/{batch_id}"
    started = [
        JobSummary(
            job_id=row_job_id(tenant, batch_id, i),
            state="received",
            batch=batch_id,
            links=absolute(state.settings, request, _links(row_job_id(tenant, batch_id, i))),
        )
        for i in range(len(rows))
    ]
    return BatchProgress(
        batch_id=batch_id,
        total=len(rows),
        started=len(rows),
        finished=0,
        by_state={"received": len(rows)},
        by_outcome={},
        jobs=started,
    )


def _links(job_id: str) -> JobLinks:
    return JobLinks(job=job_path(job_id))


@router.get(
    "/batches/{batch_id}",
    response_model=BatchProgress,
    responses=NOT_FOUND,
    summary="A batch's progress",
)
async def get_batch(
    batch_id: Annotated[str, Path(max_length=64)], tenant: Tenant, state: State, request: Request
) -> BatchProgress:
    """Counts by state and outcome, and every job's summary (from visibility: a start can
    take a moment to be counted)."""
    if not BATCH_ID.fullmatch(batch_id):
        raise not_found(batch_id, "batch")
    jobs = await state.jobs()
    query = list_query(tenant, batch=batch_id)
    executions = [
        e async for e in jobs.client.list_workflows(query, limit=state.settings.api.max_batch_rows)
    ]
    if not executions:
        raise not_found(batch_id, "batch")
    memo = await executions[0].memo()
    total = int(memo.get(BATCH_SIZE_MEMO, len(executions)))
    rows = sorted((summarise(e) for e in executions), key=lambda r: r.job_id)
    for row in rows:
        row.links = absolute(state.settings, request, row.links)
    states = Counter(r.state or "unknown" for r in rows)
    outcomes = Counter(r.outcome for r in rows if r.outcome)
    return BatchProgress(
        batch_id=batch_id,
        total=total,
        started=len(rows),
        finished=sum(outcomes.values()),
        by_state=dict(states),
        by_outcome=dict(outcomes),
        jobs=rows,
    )
