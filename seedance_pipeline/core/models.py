"""Pydantic models that cross Temporal boundaries (workflow and activity inputs and outputs).

One input model per workflow/activity so fields can be added without breaking callers. Nothing
here holds bytes or secrets: videos travel as URIs, sizes and checksums; keys stay in the
worker's environment.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from seedance_pipeline.core.capacity import (
    DEFAULT_PRIORITY,
    CapacityWaiting,
    GateAsk,
    GateRef,
    Limit,
)

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
"""Use with `fullmatch`: `$` would let a trailing newline through."""
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
"""Tenant names: lower case, so a name from the environment (pydantic-settings lowers keys)
and one from the config file are the same tenant; no `:` or `.`, which job IDs use."""
METADATA_MAX_KEYS = 16
METADATA_MAX_KEY_CHARS = 40
METADATA_MAX_VALUE_CHARS = 500
"""The application's own labels on a job: small, because the whole record travels in every
status query, webhook and history event (Stripe allows 50 keys of 500 characters)."""
WEBHOOK_URL_MAX_CHARS = 2048
PRIORITY_MIN, PRIORITY_MAX = 1, 5
"""Temporal priority keys: 1 goes first; the server's default is 3."""
UNIX_SECONDS_MAX = 2**35  # year ~3058: bounds provider timestamps before datetime conversion


class JobState(StrEnum):
    """Where a job is. States only move forward (see `core.job_state`)."""

    RECEIVED = "received"
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    STORING = "storing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """How a finished job ended; the `Outcome` search attribute."""

    SUCCEEDED = "succeeded"
    FAILED_INFRA = "failed_infra"
    FAILED_INPUT = "failed_input"
    REJECTED_MODERATION = "rejected_moderation"
    FAILED_QUOTA = "failed_quota"
    CANCELLED = "cancelled"


class ReferenceKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"


class ReferenceRole(StrEnum):
    FIRST_FRAME = "first_frame"
    LAST_FRAME = "last_frame"
    REFERENCE_IMAGE = "reference_image"
    REFERENCE_VIDEO = "reference_video"
    REFERENCE_AUDIO = "reference_audio"


class Reference(BaseModel):
    """A media input, passed by URL (never by bytes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ReferenceKind = ReferenceKind.IMAGE
    url: str
    role: ReferenceRole | None = None


class GenerationRequest(BaseModel):
    """What the user asked for. Validated against the model's limits before any paid call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prompt: str
    model: str | None = None
    route: str | None = None
    duration: int = 5
    resolution: str | None = None
    ratio: str | None = None
    references: tuple[Reference, ...] = ()
    return_last_frame: bool = False
    seed: int = -1
    generate_audio: bool | None = None
    watermark: bool = False
    camera_fixed: bool | None = None
    service_tier: Literal["default", "flex"] = "default"
    execution_expires_after: int | None = None
    model_id: str | None = None
    """Pin an exact provider model ID (regenerate from a manifest); normally resolved by alias."""


class ProviderError(BaseModel):
    """The provider's error, verbatim."""

    model_config = ConfigDict(extra="ignore")

    code: str = ""
    message: str = ""
    http_status: int | None = None
    param: str | None = None


class ProviderContent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    video_url: str | None = None
    last_frame_url: str | None = None


class ProviderUsage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    completion_tokens: int = 0
    total_tokens: int = 0


ProviderStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
TERMINAL_PROVIDER_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "cancelled", "expired"}
)


class ProviderTask(BaseModel):
    """The provider's task object (GET response, list item and callback body).

    Lenient on purpose: unknown fields are ignored, and the Go SDK's `failure_reason` is read
    as `error`. Unknown statuses are refused by validation so they can be classified, not
    guessed at.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1, max_length=128)
    model: str = ""
    status: ProviderStatus
    error: ProviderError | None = Field(
        default=None, validation_alias=AliasChoices("error", "failure_reason")
    )
    content: ProviderContent | None = None
    usage: ProviderUsage | None = None
    created_at: int | None = Field(default=None, ge=0, le=UNIX_SECONDS_MAX)
    updated_at: int | None = Field(default=None, ge=0, le=UNIX_SECONDS_MAX)
    seed: int | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    frames: int | None = None
    service_tier: str | None = None
    execution_expires_after: int | None = None
    """Echoed by the provider: the task ends `expired` this many seconds after its create."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_PROVIDER_STATUSES


class ProviderCallback(BaseModel):
    """A callback delivered by the webhook receiver to the job's workflow as a signal."""

    submit_no: int = Field(ge=0)
    task: ProviderTask
    received_at: datetime


class ResolvedModel(BaseModel):
    """Alias resolved to a concrete route, model ID, limits and price; recorded in history."""

    alias: str
    route: str
    model_id: str
    currency: str
    price_per_million: float
    """Standard price per 1M tokens at this job's resolution (C7: 2.0 at 1080p is 7.7)."""
    price_per_million_video_input: float
    """Price per 1M tokens with a reference video, at this job's resolution."""
    flex_factor: float
    unit_price: float
    """The price that applies to this request (resolution, video input and tier applied):
    the ledger prices the billed tokens with `core.pricing.cost(tokens, unit_price)`."""
    estimated_tokens: int
    """`core.pricing.estimate` on 24·d+1 frames (`duration: -1` at the model's maximum)."""
    estimated_cost: float
    pixel_table: str
    expected_latency_seconds: float
    queue_deadline_seconds: float
    execution_deadline_seconds: float
    fallback: str | None = None
    callbacks_enabled: bool = False
    poll_first_seconds: float
    poll_min_seconds: float
    poll_max_seconds: float
    poll_backoff: float
    resolution: str
    ratio: str
    create_attempts: int = 5
    task_attempts: int = 2
    create_backoff_seconds: float = 2.0
    reconcile_grace_seconds: float = 20.0
    create_timeout_seconds: float = 60.0
    check_references: bool = True
    breaker: bool = True
    budgeted: bool = False
    """The route has a spending cap: check it before each create."""
    submit_queue: str
    """The task queue `create_task` runs on (its rate limit is shared by every worker)."""
    capacity: GateRef | None = None
    """The account's capacity gate the job asks before each create (None: the gate is off)."""
    create_schedule_to_start_seconds: float = 120.0
    """How long a create may wait for a submit worker before the job fails, naming the queue."""
    output_url_seconds: float = 86_400.0
    """How long the route's signed output URLs live when a URL does not say (reference C2)."""
    task_retention_seconds: float = 86_400.0
    """How long the route's provider keeps a task queryable (reference C10: 24 h or 7 days)."""


class StoredObject(BaseModel):
    uri: str
    size: int
    sha256: str
    content_type: str


class ErrorInfo(BaseModel):
    """An error as recorded on a job: the provider's code and message kept verbatim."""

    code: str
    message: str
    http_status: int | None = None
    source: Literal["provider", "validation", "pipeline"] = "provider"


class Attempt(BaseModel):
    """One submission to the provider (a job has several only after fallback or reconcile)."""

    submit_no: int
    model_alias: str
    model_id: str
    route: str
    provider_task_id: str | None = None
    status: str | None = None
    error: ErrorInfo | None = None
    submitted_at: datetime | None = None
    billed_tokens: int = 0
    unit_price: float = 0.0
    """The price per 1M tokens this attempt's model charges for this request."""
    currency: str = ""


class CheckedReference(BaseModel):
    index: int
    url: str
    content_type: str | None = None
    size: int | None = None
    sha256: str | None = None
    """None when the bytes were not read (asset:// references)."""


class CapacityWait(BaseModel):
    """The job's wait for a slot at its account's gate (the latest one)."""

    gate_id: str
    model_id: str
    requested_at: datetime
    granted_at: datetime | None = None
    ahead: int | None = None
    """Waiters of its model that go before it, when the gate said it must wait."""
    blocked_by: Limit | None = None
    limit_value: float | None = None
    estimate_seconds: float | None = None
    refusals: int = 0
    """Creates the provider refused with 429 (each sent the job back to the gate)."""
    waited_seconds: float = 0.0
    """Time spent waiting for grants, over all of the job's waits."""


class WebhookDelivery(BaseModel):
    """One attempt to deliver a completion webhook to the application (Standard Webhooks)."""

    event: str
    webhook_id: str
    attempt: int
    status_code: int | None = None
    error: str | None = None
    """Why the attempt failed without an HTTP answer (refused host, timeout, connection)."""
    at: datetime

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class StateChange(BaseModel):
    state: JobState
    at: datetime
    note: str = ""


class JobRecord(BaseModel):
    """The whole job, as returned by the `status` query and the workflow result."""

    job_id: str
    run: str = ""
    """This run of the job (the workflow's run ID): reruns under one job ID each get their own
    ledger rows and output folder. Empty only in records made before runs were recorded."""
    state: JobState = JobState.RECEIVED
    outcome: Outcome | None = None
    request: GenerationRequest | None
    """None only for a job started past the starter with an input that is not a job's."""
    candidate: int = 0
    tenant: str | None = None
    """The API tenant that owns the job (None: started by the CLI or a script)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    route: str | None = None
    model_alias: str | None = None
    model_id: str | None = None
    provider_task_id: str | None = None
    provider_status: str | None = None
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    seed: int | None = None
    estimated_tokens: int | None = None
    estimated_cost: float | None = None
    tokens: int | None = None
    cost: float | None = None
    currency: str | None = None
    video_uri: str | None = None
    video_sha256: str | None = None
    video_bytes: int | None = None
    last_frame_uri: str | None = None
    manifest_uri: str | None = None
    provider_video_url: str | None = None
    provider_last_frame_url: str | None = None
    error: ErrorInfo | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    references_checked: list[CheckedReference] = Field(default_factory=list)
    timeline: list[StateChange] = Field(default_factory=list)
    requested_at: datetime | None = None
    submitted_at: datetime | None = None
    provider_created_at: datetime | None = None
    provider_updated_at: datetime | None = None
    stored_at: datetime | None = None
    finished_at: datetime | None = None
    callbacks_received: int = 0
    callbacks_ignored: int = 0
    polls: int = 0
    """GETs made by the repair poll (timer or operator poke)."""
    deadline_extension_minutes: int = 0
    capacity: CapacityWait | None = None
    confirm_gets: int = 0
    """GETs made to confirm a terminal callback before acting on it."""
    unanswered_gets: int = 0
    """Reads of the task the provider did not answer (an outage waited out, not an ending)."""
    webhook_deliveries: list[WebhookDelivery] = Field(default_factory=list)
    """Completion webhooks to the application, one entry per attempt."""
    followers: list[str] = Field(default_factory=list)
    """Workflow IDs of the task followers this job handed a provider task to (it ended while
    the task could still run or bill); each follower's result names what it stored."""
    notes: list[str] = Field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The flat view printed by `starter.py ... --json`."""
        return {
            "job_id": self.job_id,
            "tenant": self.tenant,
            "metadata": dict(self.metadata),
            "state": self.state.value,
            "outcome": self.outcome.value if self.outcome else None,
            "route": self.route,
            "model": self.model_alias,
            "model_id": self.model_id,
            "provider_task_id": self.provider_task_id,
            "resolution": self.resolution,
            "ratio": self.ratio,
            "duration": self.duration,
            "tokens": self.tokens,
            "estimated_tokens": self.estimated_tokens,
            "cost": self.cost,
            "currency": self.currency,
            "video_uri": self.video_uri,
            "video_sha256": self.video_sha256,
            "last_frame_uri": self.last_frame_uri,
            "manifest_uri": self.manifest_uri,
            "provider_video_url": self.provider_video_url,
            "error": self.error.model_dump() if self.error else None,
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
            "timestamps": {
                "requested": _iso(self.requested_at),
                "submitted": _iso(self.submitted_at),
                "provider_created": _iso(self.provider_created_at),
                "provider_updated": _iso(self.provider_updated_at),
                "stored": _iso(self.stored_at),
                "finished": _iso(self.finished_at),
            },
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class GenerationInput(BaseModel):
    """Workflow input. The job ID is the workflow ID; it is repeated here for the record."""

    job_id: str
    request: GenerationRequest
    candidate: int = 0
    tenant: str | None = None
    """The API tenant that owns the job; also the `Tenant` search attribute."""
    webhook_url: str | None = None
    """Where the finish phase posts the signed completion webhook (checked again at delivery)."""
    metadata: dict[str, str] = Field(default_factory=dict)
    priority: int = Field(default=DEFAULT_PRIORITY, ge=PRIORITY_MIN, le=PRIORITY_MAX)
    """1 goes first at the capacity gate (interactive jobs 2, batch rows 4 by default)."""
    fairness_key: str = Field(default="", max_length=128)
    """Jobs with different keys (batches, tenants) take turns at the gate."""

    @field_validator("job_id")
    @classmethod
    def _job_id_shape(cls, value: str) -> str:
        if not JOB_ID_PATTERN.fullmatch(value):
            raise ValueError(
                "job_id must be 1-128 characters of letters, digits and . _ : - "
                "and start with a letter or digit"
            )
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant_shape(cls, value: str | None) -> str | None:
        if value is not None and not TENANT_PATTERN.fullmatch(value):
            raise ValueError(
                "tenant must be 1-40 characters of lower-case letters, digits, _ and -"
            )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_shape(cls, value: str | None) -> str | None:
        if value is not None:
            problem = webhook_url_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_bounds(cls, value: dict[str, str]) -> dict[str, str]:
        problem = metadata_problem(value)
        if problem:
            raise ValueError(problem)
        return value


def metadata_problem(metadata: dict[str, str]) -> str | None:
    """What is wrong with an application's metadata, or None (shared by the API and the
    workflow input, so both refuse the same things with the same words)."""
    if len(metadata) > METADATA_MAX_KEYS:
        return f"{len(metadata)} keys; at most {METADATA_MAX_KEYS} are allowed"
    for key, item in metadata.items():
        if not key or len(key) > METADATA_MAX_KEY_CHARS:
            return f"key {key[:50]!r}: keys are 1-{METADATA_MAX_KEY_CHARS} characters"
        if len(item) > METADATA_MAX_VALUE_CHARS:
            return (
                f"value of {key!r} is {len(item)} characters; at most "
                f"{METADATA_MAX_VALUE_CHARS} are allowed"
            )
        if "\x00" in key or "\x00" in item:
            return f"key {key!r}: NUL characters are not allowed"
    return None


def webhook_url_problem(url: str) -> str | None:
    """The shape of a webhook URL (the private-address check needs DNS: it is the
    delivery activity's, and the API's before it starts a job)."""
    if len(url) > WEBHOOK_URL_MAX_CHARS:
        return f"{len(url)} characters; at most {WEBHOOK_URL_MAX_CHARS} are allowed"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        return f"scheme {parts.scheme or 'missing'!r}: use https:// (or http://)"
    if not parts.hostname:
        return "no host in the URL"
    if parts.username or parts.password:
        return "credentials in the URL are not allowed (the signature authenticates us)"
    return None


# ---- activity inputs -------------------------------------------------------------------------


class ResolveInput(BaseModel):
    job_id: str
    request: GenerationRequest
    alias: str | None = None
    """Resolve this alias instead of the request's model (fallback)."""


class CheckReferencesInput(BaseModel):
    job_id: str
    request: GenerationRequest


class CreateTaskInput(BaseModel):
    job_id: str
    submit_no: int
    request: GenerationRequest
    model: ResolvedModel
    run: str = ""
    """The job's run: with the job ID and submit number it derives the create's seed when the
    request leaves `seed` at -1, so a listed task proves which create made it
    (`core.fingerprint`)."""
    ask: GateAsk | None = None
    """The job's ask for a capacity slot, when it holds none: the create asks the gate first
    and runs only if granted (one call where an ask and a grant cost a job two signals)."""


class CreateTaskResult(BaseModel):
    task_id: str | None = None
    """None: the gate held the create back (nothing was sent to the provider)."""
    granted_at: datetime | None = None
    """When the gate granted the slot this create used (None: the job held it already)."""
    waiting: CapacityWaiting | None = None
    """Why the gate held it back (None: queued behind others while nothing blocks)."""


class TaskRef(BaseModel):
    job_id: str
    route: str
    task_id: str
    release_to: str | None = None
    """The capacity gate holding the job's slot: a read that finds the task succeeded gives
    the slot back there before it returns (a succeeded task is the job's last, so no later ask
    of the job can meet a late copy of this release)."""


class FindTasksInput(BaseModel):
    """Look for a task this job may have created behind an ambiguous create."""

    job_id: str
    route: str
    model_id: str
    created_after: int
    created_before: int


EXTEND_MAX_MINUTES = 24 * 60
"""The most one `extend` may add (the job's total is capped alike, in the workflow)."""


class ExtendRequest(BaseModel):
    minutes: int = Field(gt=0, le=EXTEND_MAX_MINUTES)
    reason: str = "operator"


class ChooseModelInput(BaseModel):
    job_id: str
    alias: str
    """The requested model: the chain starts here."""


class ModelChoice(BaseModel):
    alias: str
    probe: bool = False
    states: dict[str, str] = Field(default_factory=dict)
    reason: str = ""
    decided_by: str = ""
    """The worker that asked the breakers (shows every worker routes by the same state)."""
    cached: bool = False
    """Admitted from the worker's recent view of a closed breaker, without asking it."""


class ReportHealthInput(BaseModel):
    job_id: str
    alias: str
    ok: bool
    probe: bool = False
    error_code: str | None = None


class TaskOwnersInput(BaseModel):
    job_id: str
    """The asking job: its own claim does not count."""
    task_ids: list[str]


class CopyOutputInput(BaseModel):
    job_id: str
    route: str
    url: str
    kind: Literal["video", "last_frame"]
    requested_at: datetime
    provider_succeeded_at: int | None = None
    """The provider's `updated_at` of the succeeded task (unix s), for the latency metric."""
    run: str = ""
    """The job's run: its outputs live in their own folder (`core.layout`)."""
    followed_submit_no: int | None = None
    """Set by a task follower: the outputs of a task the job handed over live in the run's
    `followed-<submit_no>/` folder, so they never overwrite the job's own."""


class ManifestInput(BaseModel):
    job_id: str
    requested_at: datetime
    manifest: dict[str, Any]
    run: str = ""
    followed_submit_no: int | None = None
    """As in `CopyOutputInput`: where the manifest lives follows the outputs it describes."""


class JobLinks(BaseModel):
    """Durable links to a job and its stored outputs, as paths under the API's base URL
    (made absolute where they are handed out, so a moved domain applies to old jobs too)."""

    job: str
    video: str | None = None
    last_frame: str | None = None


class AppWebhookInput(BaseModel):
    """Activity input: deliver one completion webhook of a job to its application.

    Built by `core.app_webhooks.completion_webhook` in the finish phase; the secret is not
    here (the activity reads the tenant's `whsec_` secret at the moment of signing)."""

    job_id: str
    tenant: str
    url: str
    event: str
    webhook_id: str
    """Stable across the activity's retries: receivers deduplicate on it."""
    job: dict[str, Any]
    """The job record's summary (`JobRecord.summary()`)."""
    links: JobLinks


class AppWebhookResult(BaseModel):
    """What `deliver_app_webhook` returns: every attempt of one delivery (the last one got a
    2xx). When the activity gives up, the same list is in its failure's details
    (`details[0]["deliveries"]`)."""

    webhook_id: str
    deliveries: list[WebhookDelivery] = Field(default_factory=list)


class LedgerEntry(BaseModel):
    """One row per job attempt the provider may bill; upserted by (job_id, run, submit_no), so
    a retried write replaces its own row and a rerun adds rows beside the previous run's."""

    job_id: str
    run: str = ""
    """The job's run (the workflow's run ID); empty only for rows written before runs were
    recorded (ledger migration 4)."""
    submit_no: int
    route: str
    model_alias: str
    model_id: str
    service_tier: str
    resolution: str | None
    ratio: str | None
    duration: int | None
    provider_task_id: str | None
    tokens: int
    estimated_tokens: int | None
    billed: bool
    unit_price: float
    currency: str
    cost: float
    outcome: str
    error_code: str | None = None
    error_message: str | None = None
    requested_at: datetime
    finished_at: datetime
    tenant: str | None = None
    """The API tenant of the job (None for jobs started by the CLI); `costs` per tenant."""


class ClaimTaskInput(BaseModel):
    """Claim a provider task for one create: the first claim of a task wins, forever."""

    job_id: str
    run: str = ""
    submit_no: int
    route: str
    task_id: str


class TaskClaim(BaseModel):
    """Who owns a provider task: the create (job, run, submit number) that claimed it first."""

    task_id: str
    job_id: str
    run: str
    submit_no: int
    route: str
    claimed_at: datetime
    won: bool = False
    """In an answer to `claim_task`: the asking create holds the claim (it was first, or it
    asked before)."""

    def owned_by(self, job_id: str, run: str, submit_no: int) -> bool:
        return (self.job_id, self.run, self.submit_no) == (job_id, run, submit_no)


class FindClaimsInput(BaseModel):
    task_ids: list[str]


class UnattributedTask(BaseModel):
    """A billed provider task no create could claim (reconcile could not prove whose it is):
    recorded with what it cost and the jobs it could have been, so the money is never lost."""

    task_id: str
    route: str
    model_id: str
    status: str
    tokens: int
    unit_price: float
    currency: str
    cost: float
    candidates: list[str] = Field(default_factory=list)
    """Job IDs whose creates could have made it."""
    note: str = ""
    seen_at: datetime
