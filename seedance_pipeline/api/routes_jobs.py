"""`/v1/jobs` and `/v1/estimate`: create (with `Idempotency-Key`), read, list, cancel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urljoin, urlsplit

from fastapi import APIRouter, Header, Path, Query, Request, Response
from temporalio.client import WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.adapters.public_hosts import HostUnresolvable, private_address
from seedance_pipeline.api.errors import ApiError, not_found
from seedance_pipeline.api.jobs import (
    JobsService,
    KeyReused,
    idempotency_job_id,
    key_problem,
    new_job_id,
    record_links,
)
from seedance_pipeline.api.state import State, Tenant
from seedance_pipeline.core.api_schema import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    ErrorBody,
    EstimateResponse,
    FieldError,
    Job,
    JobCreate,
    JobList,
)
from seedance_pipeline.core.estimate import estimate
from seedance_pipeline.core.models import JOB_ID_PATTERN, JobLinks, JobRecord, JobState, Outcome
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import RequestInvalid, validate_request

ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    422: {"model": ErrorBody, "description": "invalid request: every field at fault is named"},
    503: {"model": ErrorBody, "description": "Temporal unreachable; retry"},
}
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "no such job for this API key"}
}
JobIdPath = Annotated[str, Path(min_length=1, max_length=128, description="the job ID")]

router = APIRouter(prefix="/v1", tags=["jobs"], responses=ERRORS)


def absolute(settings: Settings, request: Request, links: JobLinks) -> JobLinks:
    base = (
        settings.api.public_base_url.rstrip("/") + "/"
        if settings.api.public_base_url
        else str(request.base_url)
    )
    return JobLinks(
        **{k: (urljoin(base, v.lstrip("/")) if v else None) for k, v in links.model_dump().items()}
    )


def job_view(
    settings: Settings, request: Request, record: JobRecord, desc: WorkflowExecutionDescription
) -> Job:
    return Job(
        **record.model_dump(),
        links=absolute(settings, request, record_links(record)),
        execution_status=desc.status.name if desc.status else None,
    )


async def owned(jobs: JobsService, tenant: str, job_id: str) -> WorkflowExecutionDescription:
    if not JOB_ID_PATTERN.fullmatch(job_id):
        raise not_found(job_id)
    desc = await jobs.describe(tenant, job_id)
    if desc is None:
        raise not_found(job_id)
    return desc


def request_problems(body: JobCreate, settings: Settings, prefix: str = "") -> list[FieldError]:
    """Every problem of one request against its model's limits (pure)."""
    return [
        FieldError(field=f"{prefix}{p.field}", message=p.message)
        for p in validate_request(body.generation_request(), settings)
    ]


async def webhook_problems(
    url: str | None, settings: Settings, field: str = "webhook_url"
) -> list[FieldError]:
    """A private or unresolvable webhook host is refused before the job starts (and again at
    every delivery: DNS can change)."""
    if url is None or settings.api.allow_private_webhook_hosts:
        return []
    host = urlsplit(url).hostname or ""
    try:
        address = await private_address(host)
    except HostUnresolvable as exc:
        return [FieldError(field=field, message=str(exc))]
    if address is not None:
        return [
            FieldError(
                field=field, message=f"host {host!r} resolves to a private address ({address})"
            )
        ]
    return []


def invalid(fields: list[FieldError]) -> ApiError:
    message = "; ".join(f"{f.field}: {f.message}" for f in fields[:5])
    return ApiError(422, "invalid_request", message, fields)


@router.post(
    "/jobs",
    status_code=201,
    response_model=Job,
    responses={200: {"model": Job, "description": "replayed: the job this key created"}},
    summary="Create a generation job",
)
async def create_job(
    body: JobCreate,
    tenant: Tenant,
    state: State,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="Makes the job ID: the same key and body return the existing job "
            "(200, `Idempotent-Replayed: true`); the same key with another body is a 422.",
        ),
    ] = None,
) -> Job:
    """Validated against the model's limits before anything starts: a bad request reaches no
    provider. Answers 201 with the new job's record (and `Location`)."""
    problems = request_problems(body, state.settings)
    problems += await webhook_problems(body.webhook_url, state.settings)
    if idempotency_key is not None:
        problem = key_problem(idempotency_key)
        if problem:
            problems.append(FieldError(field=IDEMPOTENCY_HEADER, message=problem))
    if problems:
        raise invalid(problems)
    jobs = await state.jobs()
    job_id = idempotency_job_id(tenant, idempotency_key) if idempotency_key else new_job_id(tenant)
    try:
        created = await jobs.create(tenant, body, job_id=job_id, fingerprint=body.fingerprint())
    except KeyReused:
        raise ApiError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {idempotency_key!r} was used for a request with another body; "
            "send a new key for a new job",
            [FieldError(field=IDEMPOTENCY_HEADER, message="used with another body")],
        ) from None
    except RequestInvalid as exc:  # validated above; kept for a config changed in between
        raise invalid(
            [FieldError(field=p.field, message=p.message) for p in exc.problems]
        ) from None
    if created.replayed and created.description is not None:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"
        view = job_view(
            state.settings, request, await jobs.record(created.description), created.description
        )
    else:
        record = JobRecord(
            job_id=created.job_id,
            request=body.generation_request(),
            tenant=tenant,
            metadata=body.metadata,
            requested_at=datetime.now(UTC),
        )
        view = Job(
            **record.model_dump(),
            links=absolute(state.settings, request, record_links(record)),
            execution_status="RUNNING",
        )
    response.headers["Location"] = view.links.job
    return view


@router.get("/jobs/{job_id}", response_model=Job, responses=NOT_FOUND, summary="A job's record")
async def get_job(job_id: JobIdPath, tenant: Tenant, state: State, request: Request) -> Job:
    """The whole job record (state timeline, attempts, provider error verbatim, cost, webhook
    deliveries) with durable links to its stored video and last frame."""
    jobs = await state.jobs()
    desc = await owned(jobs, tenant, job_id)
    return job_view(state.settings, request, await jobs.record(desc), desc)


@router.get("/jobs", response_model=JobList, summary="List your jobs")
async def list_jobs(
    tenant: Tenant,
    state: State,
    request: Request,
    outcome: Annotated[Outcome | None, Query()] = None,
    job_state: Annotated[JobState | None, Query(alias="state")] = None,
    model: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = None,
    batch: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")] = None,
    created_after: Annotated[datetime | None, Query()] = None,
    created_before: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> JobList:
    """Newest first, from Temporal's visibility (a start shows within about a second)."""
    jobs = await state.jobs()
    try:
        rows, next_cursor = await jobs.list(
            tenant,
            outcome=outcome.value if outcome else None,
            state=job_state.value if job_state else None,
            model=model,
            batch=batch,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as exc:
        raise invalid([FieldError(field="cursor", message=str(exc))]) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            raise invalid([FieldError(field="query", message=exc.message)]) from None
        raise
    for row in rows:
        row.links = absolute(state.settings, request, row.links)
    return JobList(items=rows, next_cursor=next_cursor)


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=202,
    response_model=Job,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "the job has already finished"},
    },
    summary="Cancel a job",
)
async def cancel_job(job_id: JobIdPath, tenant: Tenant, state: State, request: Request) -> Job:
    """A queued provider task is deleted at the provider; a running one cannot be stopped and
    may still be billed (the record says which). 202: the job is told; its record turns
    `cancelled` when it has acted."""
    jobs = await state.jobs()
    desc = await owned(jobs, tenant, job_id)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        raise ApiError(409, "job_finished", f"job {job_id!r} has already finished")
    await jobs.client.get_workflow_handle(job_id, run_id=desc.run_id).cancel()
    return job_view(state.settings, request, await jobs.record(desc), desc)


@router.post(
    "/estimate",
    response_model=EstimateResponse,
    tags=["estimate"],
    summary="Tokens and cost before anything runs",
)
async def estimate_job(body: JobCreate, tenant: Tenant, state: State) -> EstimateResponse:
    """The provider's token formula and the route's price for this request (upper bound for
    a `-1` duration); nothing is started."""
    try:
        found = estimate(body.generation_request(), state.settings)
    except RequestInvalid as exc:
        raise invalid(
            [FieldError(field=p.field, message=p.message) for p in exc.problems]
        ) from None
    return EstimateResponse(**found.__dict__)
