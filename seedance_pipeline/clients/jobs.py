"""Starting, inspecting and steering jobs: the service behind `starter.py` and the tests.

The workflow ID is the job ID. A duplicate start returns the existing run (conflict policy
USE_EXISTING) and a finished job is not rerun (reuse policy REJECT_DUPLICATE) unless asked,
so a double click is one job and rerunning a batch file starts nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.job_id import derive_job_id
from seedance_pipeline.core.models import GenerationInput, GenerationRequest, JobRecord, JobState
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import ensure_valid
from seedance_pipeline.workflows.generation import GenerationWorkflow


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
) -> Started:
    """Validate, then start (or find) the job's workflow. Raises RequestInvalid first."""
    ensure_valid(request, settings)
    job_id = job_id or derive_job_id(request, candidate)
    inp = GenerationInput(job_id=job_id, request=request, candidate=candidate)
    reuse = (
        WorkflowIDReusePolicy.ALLOW_DUPLICATE if rerun else WorkflowIDReusePolicy.REJECT_DUPLICATE
    )
    try:
        handle = await client.start_workflow(
            GenerationWorkflow.run,
            inp,
            id=job_id,
            task_queue=settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            # Visible as received from the start, without an upsert of its own.
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.JOB_STATE, JobState.RECEIVED.value)]
            ),
        )
    except WorkflowAlreadyStartedError:
        # Finished already and the reuse policy refuses a rerun: the job exists, nothing to do.
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
