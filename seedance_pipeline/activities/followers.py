"""Handing a provider task to its follower: start `TaskFollowerWorkflow`, one per task.

An activity rather than a child workflow: the follower must outlive the job (a cancelled job
ends now, its task may bill tomorrow), and a start from a client with a workflow ID derived
from the task (`core.follow.follower_id`) is idempotent: a retried activity, a second handover
of the same task or another job that believes the task is its own all find the one follower
(conflict policy USE_EXISTING; a follower that already finished is not started again).
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from seedance_pipeline.core.follow import FollowerStarted, FollowTaskInput, id_of
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.follow_task import TaskFollowerWorkflow

log = structlog.get_logger(__name__)


class FollowerActivities:
    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._queue = settings.temporal.task_queue

    @activity.defn(name="start_task_follower")
    async def start_task_follower(self, data: FollowTaskInput) -> FollowerStarted:
        structlog.contextvars.bind_contextvars(job_id=data.job_id, task_id=data.task_id)
        return await start_follower(self._client, self._queue, data)


async def start_follower(client: Client, queue: str, data: FollowTaskInput) -> FollowerStarted:
    """Start the task's follower, or find the one that exists (running or finished)."""
    workflow_id = id_of(data)
    try:
        handle = await client.start_workflow(
            TaskFollowerWorkflow.run,
            data,
            id=workflow_id,
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError as exc:  # finished already: it did its work
        log.info("follower.finished_already", workflow_id=workflow_id)
        return FollowerStarted(workflow_id=workflow_id, run_id=exc.run_id, existed=True)
    log.info("follower.started", workflow_id=workflow_id, reason=data.reason)
    return FollowerStarted(
        workflow_id=workflow_id, run_id=handle.first_execution_run_id, existed=False
    )
