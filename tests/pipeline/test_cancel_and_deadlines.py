"""Cancellation through Temporal's own cancel, and the queue deadline, against the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from seedance_pipeline.core.models import GenerationRequest, JobRecord, JobState, Outcome
from tests.pipeline.conftest import Pipeline, PipelineFactory


async def _wait_for_state(pipeline: Pipeline, job: str, state: JobState) -> JobRecord:
    for _ in range(200):
        record = await pipeline.status(job)
        if record.state == state:
            return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job} never reached {state}")


async def _cancel_and_read(pipeline: Pipeline, job: str) -> JobRecord:
    handle = pipeline.client.get_workflow_handle(job, result_type=JobRecord)
    await handle.cancel()
    with contextlib.suppress(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    return await pipeline.status(job)


async def test_cancel_while_queued_deletes_the_provider_task(pipeline: Pipeline) -> None:
    word = f"cq{uuid.uuid4().hex[:8]}"
    await pipeline.emulator.aset_faults(
        [{"kind": "stuck", "phase": "queued", "match": {"prompt_contains": word}}]
    )
    job = await pipeline.start(GenerationRequest(prompt=f"cancel queued {word}", duration=4))
    await _wait_for_state(pipeline, job, JobState.QUEUED)
    record = await _cancel_and_read(pipeline, job)
    tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.CANCELLED and record.state == JobState.CANCELLED
    assert record.error and "deleted while queued" in record.error.message
    assert [t["status"] for t in tasks] == ["cancelled"]
    assert record.manifest_uri


async def test_cancel_while_running_hands_the_task_to_a_follower(pipeline: Pipeline) -> None:
    """The provider cannot cancel a running task: the job ends cancelled and its task is
    followed (the follower's own journeys: tests/pipeline/test_followers.py)."""
    word = f"cr{uuid.uuid4().hex[:8]}"
    await pipeline.emulator.aset_faults([{"kind": "stuck", "match": {"prompt_contains": word}}])
    job = await pipeline.start(GenerationRequest(prompt=f"cancel running {word}", duration=4))
    await _wait_for_state(pipeline, job, JobState.RUNNING)
    record = await _cancel_and_read(pipeline, job)
    tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.CANCELLED
    assert record.error and "followed to its end" in record.error.message
    assert [t["status"] for t in tasks] == ["running"]
    assert record.followers == [f"task-follower:byteplus:{tasks[0]['id']}"]
    await pipeline.client.get_workflow_handle(record.followers[0]).terminate("test over")


async def test_queue_deadline_cancels_at_the_provider(pipeline_factory: PipelineFactory) -> None:
    word = f"qd{uuid.uuid4().hex[:8]}"
    async with pipeline_factory(models={"mini": {"queue_deadline_seconds": 2}}) as pipeline:
        await pipeline.emulator.aset_faults(
            [{"kind": "stuck", "phase": "queued", "match": {"prompt_contains": word}}]
        )
        record = await pipeline.run(GenerationRequest(prompt=f"queue deadline {word}", duration=4))
        tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.FAILED_INFRA
    assert record.error and record.error.code == "QueueDeadlineExceeded"
    assert "cancelled at the provider" in record.error.message
    assert [t["status"] for t in tasks] == ["cancelled"]
