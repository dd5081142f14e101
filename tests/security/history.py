"""Reading a job's history the way an operator would, for assertions on what it holds."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


async def event_types(client: Client, job_id: str, run_id: str | None = None) -> list[int]:
    history = await client.get_workflow_handle(job_id, run_id=run_id).fetch_history()
    return [event.event_type for event in history.events]


async def assert_no_workflow_task_failed(
    client: Client, job_id: str, run_id: str | None = None
) -> list[int]:
    """No workflow task of this job (its latest run, or `run_id`) failed: a failing task is
    retried forever by Temporal."""
    types = await event_types(client, job_id, run_id)
    failed = types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    assert failed == 0, f"{failed} WorkflowTaskFailed events in {job_id}"
    return types
