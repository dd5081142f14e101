"""`status` lists every run of a job ID (a rerun adds one, the first stays readable) and the
task followers a job handed its tasks to, on the dev server with scripted activities."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.worker import Worker

from seedance_pipeline.clients.jobs import job_result
from seedance_pipeline.clients.runs import RunSummary, follower_views, job_runs
from seedance_pipeline.core.follow import FollowOutcome
from seedance_pipeline.core.models import JobRecord
from seedance_pipeline.worker import WORKFLOW_RUNNER
from seedance_pipeline.workflows.follow_task import TaskFollowerWorkflow
from seedance_pipeline.workflows.generation import GenerationWorkflow
from tests.workflows.follow_support import (
    FollowScript,
    follow_activities,
    follow_input,
    start_follower,
    task,
)
from tests.workflows.support import Script, job_input, scripted_worker


async def _runs(client: Client, job_id: str, want: int) -> list[RunSummary]:
    for _ in range(100):  # visibility catches up within a moment on the dev server
        runs = await job_runs(client, job_id)
        if len(runs) >= want and all(r.closed_at for r in runs):
            return runs
        await asyncio.sleep(0.1)
    raise AssertionError(f"{job_id}: fewer than {want} closed runs listed")


async def test_a_rerun_is_listed_beside_the_first_run(client: Client) -> None:
    inp = job_input()
    async with scripted_worker(client, Script()) as queue:
        for _ in range(2):
            handle = await client.start_workflow(
                GenerationWorkflow.run,
                inp,
                id=inp.job_id,
                task_queue=queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            )
            await job_result(handle)
        runs = await _runs(client, inp.job_id, 2)
    assert len(runs) == 2 and runs[0].run_id != runs[1].run_id
    assert runs[0].started_at is not None and runs[1].started_at is not None
    assert runs[0].started_at <= runs[1].started_at
    assert [(r.status, r.outcome) for r in runs] == [("COMPLETED", "succeeded")] * 2
    assert all(r.video_uri and r.manifest_uri for r in runs)
    assert await job_runs(client, "no'such job") == []


async def test_a_jobs_followers_are_shown_with_what_they_stored(client: Client) -> None:
    """The query reads a finished follower too (a worker replays it, as in production)."""
    inp = follow_input()
    script = FollowScript(gets=[task(inp.task_id, "succeeded")])
    queue = f"follow-{uuid.uuid4().hex[:10]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TaskFollowerWorkflow],
        activities=follow_activities(script),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await start_follower(client, queue, inp, f"follow-{uuid.uuid4().hex[:12]}")
        await handle.result()
        record = JobRecord(job_id=inp.job_id, request=inp.request, followers=[handle.id])
        (view,) = await follower_views(client, record)
    assert view.task_id == inp.task_id and view.result is not None
    assert view.result.outcome == FollowOutcome.STORED
    missing = JobRecord(job_id="j", request=inp.request, followers=[f"nope-{uuid.uuid4().hex}"])
    (gone,) = await follower_views(client, missing)
    assert gone.problem and gone.result is None
