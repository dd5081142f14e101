"""Following a provider task after its job has ended: the input, the result, the rules.

A job can end while its provider task may still run or bill: it was cancelled while the task
ran, a deadline passed, GETs failed past their retries, an ambiguous create later announced a
task, or a copy failed while the URL may still live. The job then hands the task to a
`TaskFollowerWorkflow` (`workflows.follow_task`), one per provider task (its workflow ID is
derived from the route and task ID, so two handovers of one task are one follower), which reads
the task until it is terminal or provably gone, records what the provider billed in the ledger
row of the create that made it (same key, so it replaces the job's row), and stores a succeeded
task's outputs in the run's `followed-<submit>/` folder unless told to discard them.

`handover` builds the follower's input from what the job knows; it is pure so the job's workflow
calls it directly. `watch_unattributed` builds one for a listed task that several creates could
have made and none could prove (a pinned seed, a list without seeds): that follower records the
task's bill as unattributed, with its candidates, unless a create claims it meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from seedance_pipeline.core.models import (
    Attempt,
    GenerationRequest,
    JobRecord,
    Outcome,
    ProviderTask,
    ResolvedModel,
    StoredObject,
)

DEFAULT_EXECUTION_EXPIRES_AFTER = 172_800
"""The provider's default `execution_expires_after` (48 h, reference §3.1) when neither the
request nor the task says otherwise."""
EXPIRY_MARGIN_SECONDS = 600.0
"""How long past the task's own expiry the follower still reads it: the provider's clock and
ours differ, and its `expired` state needs a moment to appear."""
GONE_AFTER_NOT_FOUND = 2
"""Consecutive "no such task" answers, a poll apart, before a task counts as provably gone (a
single 404 right after a create could be the provider's own replication lag)."""
POLLS_PER_RUN = 400
"""Polls before the follower continues as new, so a two-day follow keeps a short history."""
WORKFLOW_ID_PREFIX = "task-follower"
UNATTRIBUTED_PREFIX = "task-follower-unattributed"
SALVAGE_PREFIX = "task-salvage"


class FollowOutcome(StrEnum):
    """What a follower did with the task; also the `outcome` of the ledger row it writes."""

    STORED = "followed_stored"
    """The task succeeded and its outputs are in our storage."""
    DISCARDED = "followed_discarded"
    """The task succeeded (and billed); the operator asked not to store it."""
    NOT_STORED = "followed_not_stored"
    """The task succeeded (and billed) but no copy was possible while its URL lived."""
    BILLED = "followed_billed"
    """The task succeeded and is recorded; storing it is under way (replaced when done)."""
    FAILED = "followed_failed"
    EXPIRED = "followed_expired"
    CANCELLED = "followed_cancelled"
    GONE = "followed_gone"
    """The provider no longer knows the task; recorded with what was last seen of it."""
    ABANDONED = "followed_abandoned"
    """Still not terminal past its own expiry and the route's retention: recorded as last seen."""
    UNATTRIBUTED = "followed_unattributed"
    """Billed, and no create could claim it: recorded as an unattributed task (no job's row)."""
    OWNED_ELSEWHERE = "followed_owned_elsewhere"
    """Watched as unattributed, but a create claimed it meanwhile: its owner's row records it."""


TERMINAL_OUTCOMES = {
    "failed": FollowOutcome.FAILED,
    "expired": FollowOutcome.EXPIRED,
    "cancelled": FollowOutcome.CANCELLED,
}


class FollowProgress(BaseModel):
    """What a follower has learned so far; carried across continue-as-new."""

    polls: int = 0
    get_failures: int = 0
    not_found: int = 0
    """Consecutive "no such task" answers (reset by any other answer)."""
    last_seen: ProviderTask | None = None
    interval_seconds: float = 0.0
    """The current wait between reads (it backs off; kept across continue-as-new)."""
    started_at: datetime | None = None
    notes: list[str] = Field(default_factory=list)


class FollowTaskInput(BaseModel):
    """Everything a follower needs: the create that made the task, its price, what to store."""

    job_id: str
    run: str = ""
    submit_no: int
    route: str
    task_id: str
    model_alias: str
    model_id: str
    unit_price: float
    """The attempt's price per 1M tokens: the ledger row bills the provider's tokens at it."""
    currency: str
    request: GenerationRequest
    """The job's request, for the manifest (and `return_last_frame`)."""
    requested_at: datetime
    """The job's request time: the output folder's date and the ledger row's `requested_at`."""
    accepted_at: datetime
    """When the provider took the create: the task's expiry counts from here."""
    reason: str
    """Why the job handed the task over (for the record, the result and the manifest)."""
    job_outcome: Outcome | None = None
    """The job's own outcome; it stays what it is (a cancelled job stays cancelled)."""
    store: bool = True
    """False: the operator asked to discard the outputs (the bill is still recorded)."""
    resolution: str | None = None
    ratio: str | None = None
    duration: int | None = None
    estimated_tokens: int | None = None
    url_lifetime_seconds: float = 86_400.0
    task_retention_seconds: float = 86_400.0
    expiry_margin_seconds: float = EXPIRY_MARGIN_SECONDS
    poll_first_seconds: float = 10.0
    poll_max_seconds: float = 300.0
    poll_backoff: float = 1.6
    capacity_gate_id: str | None = None
    """The capacity gate holding this task's provider slot, if any: told `release` once the task
    no longer runs (`workflows.follow_task.release_capacity`)."""
    capacity_holder_id: str | None = None
    """Whose slot it is at the gate (the job's ID)."""
    unattributed_candidates: list[str] | None = None
    """Set for a task no create could prove its own: the jobs whose creates could have made it.
    The follower then writes no ledger row and stores nothing; a billed task is recorded as
    unattributed with these candidates, unless a create claims it first."""
    salvage: bool = False
    """Started by the scheduled reconcile for a billed task whose row or video was missing
    (`core.salvage`): its own workflow ID, so a follower that already finished does not block
    it; an unattributed salvage also stores the video, in the orphan's own folder."""
    progress: FollowProgress = Field(default_factory=FollowProgress)


class FollowTaskResult(BaseModel):
    """What the follower did: the follower's workflow result."""

    task_id: str
    job_id: str
    run: str
    submit_no: int
    outcome: FollowOutcome
    provider_status: str | None
    tokens: int
    cost: float
    currency: str
    video: StoredObject | None = None
    last_frame: StoredObject | None = None
    manifest_uri: str | None = None
    polls: int = 0
    notes: list[str] = Field(default_factory=list)


class FollowerView(BaseModel):
    """The follower's `status` query: what it follows, how far it got, what it did."""

    task_id: str = ""
    job_id: str = ""
    run: str = ""
    submit_no: int = 0
    reason: str = ""
    progress: FollowProgress = Field(default_factory=FollowProgress)
    result: FollowTaskResult | None = None
    problem: str = ""
    """Why the follower's input was refused (then nothing else is set)."""


class FollowerStarted(BaseModel):
    workflow_id: str
    run_id: str | None
    existed: bool
    """A follower of this task was already running or had finished: nothing new started."""


def follower_id(
    route: str, task_id: str, *, unattributed: bool = False, salvage: bool = False
) -> str:
    """One follower per provider task, whoever hands it over and however often (and one
    watcher of it as an unattributed candidate, which never writes a job's row, and one
    salvage by the scheduled reconcile)."""
    prefix = (
        SALVAGE_PREFIX if salvage else UNATTRIBUTED_PREFIX if unattributed else WORKFLOW_ID_PREFIX
    )
    return f"{prefix}:{route}:{task_id}"


def id_of(inp: FollowTaskInput) -> str:
    unattributed = inp.unattributed_candidates is not None
    return follower_id(inp.route, inp.task_id, unattributed=unattributed, salvage=inp.salvage)


def expires_after(inp: FollowTaskInput) -> int:
    seen = inp.progress.last_seen
    return (
        inp.request.execution_expires_after
        or (seen.execution_expires_after if seen else None)
        or DEFAULT_EXECUTION_EXPIRES_AFTER
    )


def give_up_at(inp: FollowTaskInput) -> datetime:
    """The last moment the follower reads the task: its own expiry plus a margin, and never
    past the route's retention (after which the provider has forgotten it)."""
    expiry = inp.accepted_at + timedelta(seconds=expires_after(inp) + inp.expiry_margin_seconds)
    retention = inp.accepted_at + timedelta(seconds=inp.task_retention_seconds)
    return min(expiry, retention)


def retention_until(inp: FollowTaskInput) -> datetime:
    seen = inp.progress.last_seen
    created = (
        datetime.fromtimestamp(seen.created_at, UTC)
        if seen is not None and seen.created_at
        else inp.accepted_at
    )
    return created + timedelta(seconds=inp.task_retention_seconds)


class FollowTiming(BaseModel):
    """How long a task's URLs and the task itself live, and how to poll it: from the job's
    resolved model, or (a salvage, long after the job) from the route's settings."""

    currency: str
    url_lifetime_seconds: float
    task_retention_seconds: float
    poll_first_seconds: float
    poll_max_seconds: float
    poll_backoff: float

    @classmethod
    def of_model(cls, model: ResolvedModel) -> FollowTiming:
        return cls(
            currency=model.currency,
            url_lifetime_seconds=model.output_url_seconds,
            task_retention_seconds=model.task_retention_seconds,
            poll_first_seconds=max(model.poll_min_seconds, model.poll_first_seconds),
            poll_max_seconds=max(model.poll_max_seconds, model.poll_min_seconds),
            poll_backoff=model.poll_backoff,
        )

    def fields(self) -> dict[str, float]:
        """The follower input's timing fields."""
        return self.model_dump(exclude={"currency"})


def handover(
    record: JobRecord,
    attempt: Attempt,
    model: ResolvedModel | FollowTiming,
    request: GenerationRequest,
    *,
    reason: str,
    store: bool = True,
    last_seen: ProviderTask | None = None,
    capacity_gate_id: str | None = None,
) -> FollowTaskInput:
    """The follower's input for `attempt`'s task, from the job's record and model.

    The job calls this when it ends while the task may still run or bill, and starts the
    follower with it (`start_task_follower`). Raises ValueError when the attempt has no task."""
    if attempt.provider_task_id is None:
        raise ValueError(f"attempt {attempt.submit_no} of {record.job_id} has no provider task")
    accepted = attempt.submitted_at or record.submitted_at or record.requested_at
    if accepted is None or record.requested_at is None:
        raise ValueError(f"job {record.job_id} has no request time")
    timing = model if isinstance(model, FollowTiming) else FollowTiming.of_model(model)
    return FollowTaskInput(
        job_id=record.job_id,
        run=record.run,
        submit_no=attempt.submit_no,
        route=attempt.route,
        task_id=attempt.provider_task_id,
        model_alias=attempt.model_alias,
        model_id=attempt.model_id,
        unit_price=attempt.unit_price,
        currency=attempt.currency or record.currency or timing.currency,
        request=request,
        requested_at=record.requested_at,
        accepted_at=accepted,
        reason=reason,
        job_outcome=record.outcome,
        store=store,
        resolution=record.resolution,
        ratio=record.ratio,
        duration=record.duration,
        estimated_tokens=record.estimated_tokens,
        **timing.fields(),
        capacity_gate_id=capacity_gate_id,
        capacity_holder_id=record.job_id if capacity_gate_id else None,
        progress=FollowProgress(last_seen=last_seen),
    )


def watch_unattributed(
    task: ProviderTask,
    record: JobRecord,
    model: ResolvedModel,
    request: GenerationRequest,
    *,
    candidates: list[str],
    reason: str,
) -> FollowTaskInput:
    """A follower input for a listed task that `candidates` could all have made: it follows the
    task to its end and records a billed one as unattributed (never as this job's row)."""
    now = record.finished_at or record.requested_at
    if now is None:
        raise ValueError(f"job {record.job_id} has no request time")
    created = datetime.fromtimestamp(task.created_at, UTC) if task.created_at else now
    return FollowTaskInput(
        job_id=record.job_id,
        run=record.run,
        submit_no=0,
        route=model.route,
        task_id=task.id,
        model_alias=model.alias,
        model_id=task.model or model.model_id,
        unit_price=model.unit_price,
        currency=model.currency,
        request=request,
        requested_at=record.requested_at or now,
        accepted_at=created,
        reason=reason,
        job_outcome=record.outcome,
        store=False,
        **FollowTiming.of_model(model).fields(),
        unattributed_candidates=sorted(set(candidates)),
        progress=FollowProgress(last_seen=task),
    )
