"""Starting, inspecting and steering jobs: the service behind `starter.py` and the tests.

The workflow ID is the job ID. A duplicate start returns the existing run (conflict policy
USE_EXISTING) and a finished job is not rerun (reuse policy REJECT_DUPLICATE) unless asked,
so a double click is one job and rerunning a batch file starts nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.job_id import derive_job_id
from seedance_pipeline.core.models import GenerationInput, GenerationRequest, JobRecord, JobState
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import ensure_valid
from seedance_pipeline.workflows.generation import SUBMIT_QUEUE_MEMO, GenerationWorkflow


class UnknownJob(LookupError):
    """No workflow with that job ID exists."""


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
    batch: str | None = None,
    memo: Mapping[str, Any] | None = None,
    conflict: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.USE_EXISTING,
) -> Started:
    """Validate, then start (or find) the job's workflow. Raises RequestInvalid first (and
    pydantic's ValidationError for a malformed tenant, webhook URL, metadata or priority).

    `tenant` and `batch` are search attributes set with the start, as `JobState` is, so a
    tenant's listing sees its job from the first moment and never another tenant's; the
    tenant is also the fairness key of the start's priority. `memo` adds entries (the API
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
        priority=priority,
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
            memo={**(memo or {}), SUBMIT_QUEUE_MEMO: settings.temporal.submit_task_queue},
            search_attributes=TypedSearchAttributes(attributes),
            priority=(
                Priority(priority_key=priority, fairness_key=tenant)
                if priority is not None or tenant is not None
                else Priority.default
            ),
        )
    except WorkflowAlreadyStartedError:
        # Finished already and the reuse policy refuses a rerun (or running, with FAIL): the
        # job exists, nothing to do.
        return Started(job_id=job_id, run_id=None, existed=True)
    existed = handle.result_run_id != handle.first_execution_run_id
    return Started(job_id=job_id, run_id=handle.result_run_id, existed=existed, handle=handle)


def handle_for(client: Client, job_id: str) -> WorkflowHandle[GenerationWorkflow, JobRecord]:
    return client.get_workflow_handle_for(GenerationWorkflow.run, job_id)


async def job_status(client: Client, job_id: str) -> JobRecord:
    """The job record from the `status` query (works on running and finished jobs)."""
    handle = handle_for(client, job_id)
    try:
        record = await handle.query(GenerationWorkflow.status)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownJob(f"no job with ID {job_id!r}") from None
        raise
    if record is None:
        raise UnknownJob(f"job {job_id!r} has not started its first step yet")
    return record


async def job_execution_status(client: Client, job_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await handle_for(client, job_id).describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownJob(f"no job with ID {job_id!r}") from None
        raise


async def cancel_job(client: Client, job_id: str) -> None:
    handle = handle_for(client, job_id)
    try:
        await handle.cancel()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownJob(f"no running job with ID {job_id!r}") from None
        raise


async def poke_job(client: Client, job_id: str) -> None:
    try:
        await handle_for(client, job_id).signal(GenerationWorkflow.poke)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownJob(f"no running job with ID {job_id!r}") from None
        raise
