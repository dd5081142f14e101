"""Starting, inspecting and steering jobs: the service behind `starter.py` and the tests.

The workflow ID is the job ID. A duplicate start returns the existing run (conflict policy
USE_EXISTING) and a finished job is not rerun (reuse policy REJECT_DUPLICATE) unless asked,
so a double click is one job and rerunning a batch file starts nothing new.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.adapters.task_queues import live_pollers
from seedance_pipeline.clients.pollers import NoWorker
from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.capacity import DEFAULT_PRIORITY
from seedance_pipeline.core.job_id import derive_job_id
from seedance_pipeline.core.models import GenerationInput, GenerationRequest, JobRecord, JobState
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import ensure_valid
from seedance_pipeline.workflows.generation import GenerationWorkflow

QUERY_TIMEOUT = timedelta(seconds=10)
"""How long a status query may take. A query needs a worker (for finished jobs too); without
one the server holds it for 30 s and answers with an opaque timeout."""
_NO_ANSWER = frozenset(
    {RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.FAILED_PRECONDITION}
)
"""How a query that no worker took comes back: our deadline, the server's, or its
"no poller seen for task queue recently"."""


class UnknownJob(LookupError):
    """No workflow with that job ID exists."""


class JobFinished(RuntimeError):
    """The job has finished, so it can no longer be cancelled, poked or extended."""

    def __init__(self, job_id: str, how: str, closed_at: datetime | None) -> None:
        when = f" at {closed_at:%Y-%m-%d %H:%M:%S} UTC" if closed_at else ""
        super().__init__(f"job {job_id} already finished ({how}{when})")
        self.job_id = job_id
        self.how = how


class JobUnanswered(RuntimeError):
    """A worker polled the job's queue recently but did not answer in time: it is overloaded,
    or it stopped less than a long poll ago (the server cannot tell them apart yet)."""

    def __init__(
        self, job_id: str, queue: str, last_seen_seconds: float, what: str = "status query"
    ) -> None:
        self.job_id, self.queue, self.last_seen_seconds = job_id, queue, last_seen_seconds
        self.what = what
        super().__init__(self.with_log(None))

    def with_log(self, log: str | None) -> str:
        where = f"; the worker's log: {log}" if log else ""
        return (
            f"no worker answered the {self.what} of {self.job_id} within "
            f"{QUERY_TIMEOUT.total_seconds():.0f} s: the worker polling {self.queue} was last "
            f"seen {self.last_seen_seconds:.0f} s ago and is overloaded or has stopped{where}"
        )


@contextlib.contextmanager
def known_job(job_id: str, *, running: bool = False) -> Iterator[None]:
    """Translate Temporal's NOT_FOUND for this job into UnknownJob, once for every call."""
    try:
        yield
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        what = "no running job" if running else "no job"
        raise UnknownJob(f"{what} with ID {job_id!r}") from None


@dataclass(frozen=True)
class Started:
    job_id: str
    run_id: str | None
    existed: bool
    handle: WorkflowHandle[GenerationWorkflow, JobRecord] | None = None
    """The start call's own handle (under the time-skipping server only this one skips time)."""


async def start_job(
    client: Client,
    settings: Settings,
    request: GenerationRequest,
    *,
    job_id: str | None = None,
    candidate: int = 0,
    rerun: bool = False,
    tenant: str | None = None,
    webhook_url: str | None = None,
    metadata: Mapping[str, str] | None = None,
    priority: int | None = None,
    fairness_key: str | None = None,
    batch: str | None = None,
    memo: Mapping[str, Any] | None = None,
    conflict: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.USE_EXISTING,
) -> Started:
    """Validate, then start (or find) the job's workflow. Raises RequestInvalid first (and
    pydantic's ValidationError for a malformed tenant, webhook URL, metadata or priority).

    `tenant` and `batch` are search attributes set with the start, as `JobState` is, so a
    tenant's listing sees its job from the first moment and never another tenant's. The
    capacity gate serves jobs by `priority` (1 first; default 3), then round-robin across
    fairness keys: `fairness_key`, else the batch, else the tenant. `memo` adds entries (the API
    keeps its idempotency fingerprint there). `conflict=FAIL` makes a running duplicate
    come back as `existed=True` too (USE_EXISTING hands back the running job's handle, which
    cannot tell it from a fresh start).
    """
    ensure_valid(request, settings)
    job_id = job_id or derive_job_id(request, candidate)
    inp = GenerationInput(
        job_id=job_id,
        request=request,
        candidate=candidate,
        tenant=tenant,
        webhook_url=webhook_url,
        metadata=dict(metadata or {}),
        priority=DEFAULT_PRIORITY if priority is None else priority,
        fairness_key=fairness_key or batch or tenant or "",
    )
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if rerun else WorkflowIDReusePolicy.REJECT_DUPLICATE
    )
    # Visible as received from the start, without an upsert of its own.
    attributes = [SearchAttributePair(sa.JOB_STATE, JobState.RECEIVED.value)]
    if tenant is not None:
        attributes.append(SearchAttributePair(sa.TENANT, tenant))
    if batch is not None:
        attributes.append(SearchAttributePair(sa.BATCH, batch))
    try:
        handle = await client.start_workflow(
            GenerationWorkflow.run,
            inp,
            id=job_id,
            task_queue=settings.temporal.task_queue,
            id_conflict_policy=conflict,
            id_reuse_policy=reuse,
            memo=dict(memo or {}),
            search_attributes=TypedSearchAttributes(attributes),
            # The server's own priority and fairness order the job's workflow and activity
            # tasks when workers are the bottleneck; the capacity gate orders its creates.
            priority=Priority(priority_key=inp.priority, fairness_key=inp.fairness_key or None),
        )
    except WorkflowAlreadyStartedError:
        # Finished already and the reuse policy refuses a rerun (or running, with FAIL): the
        # job exists, nothing to do.
        return Started(job_id=job_id, run_id=None, existed=True)
    existed = handle.result_run_id != handle.first_execution_run_id
    return Started(job_id=job_id, run_id=handle.result_run_id, existed=existed, handle=handle)


async def job_result(handle: WorkflowHandle[Any, Any]) -> JobRecord:
    """The finished job's record, whatever its outcome.

    A job that did not succeed fails its workflow with the record in the failure's details (so
    the Web UI shows it as failed); a cancelled one is read through the `status` query.
    """
    try:
        return JobRecord.model_validate(await handle.result())
    except WorkflowFailureError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.details:
            return JobRecord.model_validate(cause.details[0])
        return await handle.query(GenerationWorkflow.status)


def handle_for(client: Client, job_id: str) -> WorkflowHandle[GenerationWorkflow, JobRecord]:
    return client.get_workflow_handle_for(GenerationWorkflow.run, job_id)


async def job_status(client: Client, job_id: str) -> JobRecord:
    """The job record from the `status` query (works on running and finished jobs, as long
    as a worker polls the job's queue: NoWorker says so when none does)."""
    handle = handle_for(client, job_id)
    with known_job(job_id):
        try:
            record = await handle.query(GenerationWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as exc:
            if not unanswered(exc):
                raise
            raise await why_unanswered(client, job_id) from None
    if record is None:
        raise UnknownJob(f"job {job_id!r} has not started its first step yet")
    return record


def unanswered(exc: RPCError) -> bool:
    """A call no worker took in time (a query or an update)."""
    return exc.status in _NO_ANSWER


async def why_unanswered(client: Client, job_id: str, what: str = "status query") -> Exception:
    with known_job(job_id):
        queue = (await handle_for(client, job_id).describe()).task_queue
    live = await live_pollers(client, queue, ("workflow",))
    if not live:
        return NoWorker(queue, client.service_client.config.target_host)
    now = datetime.now(UTC)
    seen = min((now - p.last_access).total_seconds() for p in live if p.last_access)
    return JobUnanswered(job_id, queue, seen, what)


async def describe_job(client: Client, job_id: str) -> WorkflowExecutionDescription:
    with known_job(job_id):
        return await handle_for(client, job_id).describe()


async def job_execution_status(client: Client, job_id: str) -> WorkflowExecutionStatus | None:
    return (await describe_job(client, job_id)).status


async def require_running(client: Client, job_id: str) -> str:
    """The running job's task queue; JobFinished (with how it ended) when it has finished."""
    described = await describe_job(client, job_id)
    if described.status == WorkflowExecutionStatus.RUNNING:
        return described.task_queue
    outcome = described.typed_search_attributes.get(sa.OUTCOME)
    status = described.status.name.lower() if described.status else "closed"
    how = f"{outcome}, workflow {status}" if outcome else f"workflow {status}"
    raise JobFinished(job_id, how, described.close_time)


async def cancel_job(client: Client, job_id: str) -> str:
    """Request cancellation (Temporal keeps it until a worker acts on it); JobFinished when
    there is nothing left to cancel. Returns the job's queue."""
    queue = await require_running(client, job_id)
    with known_job(job_id, running=True):
        await handle_for(client, job_id).cancel()
    return queue


async def poke_job(client: Client, job_id: str) -> str:
    """Signal the job to check the provider now (kept until a worker acts on it)."""
    queue = await require_running(client, job_id)
    with known_job(job_id, running=True):
        await handle_for(client, job_id).signal(GenerationWorkflow.poke)
    return queue
