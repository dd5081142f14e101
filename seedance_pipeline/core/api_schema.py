"""The HTTP API's request and response bodies, shared by the server (`api/`) and the typed
client (`api_client/`), so both speak exactly one schema and the client never imports FastAPI.

A job is created from the CLI's own request model (`GenerationRequest`) plus the fields only
an application has (a webhook, a priority, its metadata): the same validation, the same
field names, the same 422 wording.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seedance_pipeline.core.models import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    WEBHOOK_URL_MAX_CHARS,
    GenerationRequest,
    JobLinks,
    JobRecord,
    metadata_problem,
    webhook_url_problem,
)

REPLAYED_HEADER = "Idempotent-Replayed"
"""`true` on a 200 that returns the job an earlier request with the same key created."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255


class JobCreate(GenerationRequest):
    """`POST /v1/jobs`: the generation request, plus what only an application asks for."""

    webhook_url: str | None = Field(default=None, max_length=WEBHOOK_URL_MAX_CHARS)
    """Where `job.succeeded` / `job.failed` / `job.cancelled` is posted, signed with the
    tenant's `whsec_` secret (Standard Webhooks)."""
    priority: int | None = Field(default=None, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    """1 goes first, 5 last; unset: the server's default (3)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Your own labels (at most 16 keys, 40-character keys, 500-character values), returned
    in the record and every webhook."""

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None:
            problem = webhook_url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        problem = metadata_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def generation_request(self) -> GenerationRequest:
        return GenerationRequest.model_validate(
            self.model_dump(include=set(GenerationRequest.model_fields))
        )

    def fingerprint(self) -> str:
        """What `Idempotency-Key` compares: the parsed body, so key order, whitespace and
        defaults spelled out or left out are the same body, and any value that changes the
        job is not."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Job(JobRecord):
    """`GET /v1/jobs/{id}`: the whole job record, with absolute durable links."""

    links: JobLinks
    execution_status: str | None = None
    """Temporal's view: RUNNING while the job (or its webhook delivery) is in progress."""


class JobSummary(BaseModel):
    """One row of `GET /v1/jobs`, from the search attributes (no worker is asked)."""

    job_id: str
    state: str | None = None
    outcome: str | None = None
    model: str | None = None
    model_id: str | None = None
    route: str | None = None
    cost: float | None = None
    currency: str | None = None
    error_code: str | None = None
    batch: str | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    execution_status: str | None = None
    links: JobLinks


class JobList(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None = None
    """Pass as `cursor` for the next page; absent on the last one."""


class EstimateResponse(BaseModel):
    model: str
    model_id: str
    route: str
    resolution: str
    ratio: str
    seconds: int
    tokens: int
    unit_price: float
    cost: float
    currency: str


class BatchCreate(BaseModel):
    """`POST /v1/batches`: rows validated first, all of them; none starts unless all pass."""

    model_config = ConfigDict(extra="forbid")

    rows: list[JobCreate] = Field(min_length=1)
    webhook_url: str | None = Field(default=None, max_length=WEBHOOK_URL_MAX_CHARS)
    """The default for rows that name none."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Merged under each row's own metadata."""

    def fingerprint(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class BatchProgress(BaseModel):
    batch_id: str
    total: int
    started: int
    """Jobs the listing sees (visibility can lag a start by a moment)."""
    finished: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    jobs: list[JobSummary]


class CostLineBody(BaseModel):
    group: str
    currency: str
    jobs: int
    attempts: int
    billed_attempts: int
    video_seconds: int
    tokens: int
    estimated_tokens: int
    cost: float
    cost_per_second: float | None = None


class CostReportBody(BaseModel):
    tenant: str
    by: Literal["day", "model", "route", "outcome"]
    since: str | None = None
    until: str | None = None
    lines: list[CostLineBody]
    totals: list[CostLineBody]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API."""

    error: ErrorDetail


class PageLink(BaseModel):
    """`POST /v1/page-links`: a short-lived URL that opens the jobs page signed in."""

    url: str
    expires_at: datetime


def as_json(value: BaseModel) -> dict[str, Any]:
    return value.model_dump(mode="json")
