"""Attacks a running job through its `provider_callback` and `poke` signals directly, past the
webhook receiver (anyone with access to the Temporal namespace can): no arguments, two
arguments, wrong types, missing fields, a forged success for the job's own task. The job must
not fail a single workflow task (Temporal would retry it forever) and must still finish by the
provider's real answer. The same for the model's shared breaker (`report` signal, `admit`
update): garbage is dropped or rejected and later jobs are still admitted. And a job started
directly (CLI, Web UI) with a malformed input fails at once with the reason, instead of
failing its first workflow task forever.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from seedance_pipeline.core.models import GenerationRequest, JobRecord, Outcome
from tests.pipeline.conftest import PipelineFactory
from tests.security.history import assert_no_workflow_task_failed

GARBAGE: list[list[Any]] = [
    [],
    [{"submit_no": 1}, {"extra": True}],
    [{"garbage": 1}],
    ["a string"],
    [12345],
    [None],
    [{"submit_no": "one", "task": 5, "received_at": "not a time"}],
    [{"submit_no": -1, "task": {"id": "", "status": "succeeded"}, "received_at": "2026-01-01"}],
    [{"submit_no": 1, "task": {"id": "x" * 500, "status": "paused"}, "received_at": "now"}],
    [{"submit_no": 1, "task": {"status": "succeeded"}, "received_at": "2026-01-01T00:00:00Z"}],
]


async def test_garbage_signals_never_fail_a_workflow_task(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    async with pipeline_factory() as pipeline:
        job = await pipeline.start(
            GenerationRequest(prompt=f"garbage signals {uuid.uuid4().hex[:8]}", duration=4)
        )
        handle = client.get_workflow_handle(job, result_type=JobRecord)
        for args in GARBAGE:
            await handle.signal("provider_callback", args=args)
        await handle.signal("poke", args=["now", 2])
        record = await handle.result()
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.callbacks_ignored >= len(GARBAGE)
    assert any("malformed callback signal (0 args)" in n for n in record.notes), record.notes
    types = await assert_no_workflow_task_failed(client, job)
    assert types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED) >= len(GARBAGE) + 1


async def test_forged_success_signal_is_checked_with_the_provider(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    """A well-formed `succeeded` for the job's own task, sent while the task is stuck, is only
    a hint: the confirming GET sees `running`, so the job neither stores nor finishes."""
    word = uuid.uuid4().hex[:8]
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults([{"kind": "stuck", "match": {"prompt_contains": word}}])
        job = await pipeline.start(GenerationRequest(prompt=f"forged {word}", duration=4))
        handle = client.get_workflow_handle(job, result_type=JobRecord)
        record = await pipeline.status(job)
        for _ in range(100):
            record = await pipeline.status(job)
            if record.provider_task_id and record.provider_status == "running":
                break
            await asyncio.sleep(0.1)
        forged = {
            "submit_no": 1,
            "task": {
                "id": record.provider_task_id,
                "status": "succeeded",
                "content": {"video_url": "http://169.254.169.254/latest/meta-data/"},
            },
            "received_at": datetime.now(UTC).isoformat(),
        }
        gets_before = record.confirm_gets
        await handle.signal("provider_callback", forged)
        for _ in range(50):
            record = await pipeline.status(job)
            if record.confirm_gets > gets_before:
                break
            await asyncio.sleep(0.1)
        await handle.cancel()
    assert record.confirm_gets > gets_before, "the forged success was confirmed with a GET"
    assert record.outcome is None and record.provider_status == "running"
    assert record.provider_video_url is None and record.video_uri is None
    await assert_no_workflow_task_failed(client, job)


async def test_garbage_to_the_breaker_is_dropped_or_rejected(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    async with pipeline_factory() as pipeline:
        first = await pipeline.run(GenerationRequest(prompt=f"breaker {uuid.uuid4().hex}"))
        breaker = client.get_workflow_handle(f"model-health:mini@{pipeline.settings.breaker.scope}")
        for args in GARBAGE:
            await breaker.signal("report", args=args)
        for args in ([], [{"job_id": "j"}, 2], [{"job_id": 5}], ["x"]):
            with pytest.raises(WorkflowUpdateFailedError):
                await breaker.execute_update("admit", args=args)
        second = await pipeline.run(GenerationRequest(prompt=f"breaker {uuid.uuid4().hex}"))
    assert first.outcome == second.outcome == Outcome.SUCCEEDED, second.error
    assert not any("breaker unavailable" in note for note in second.notes), second.notes
    await assert_no_workflow_task_failed(client, breaker.id)
    await breaker.terminate("test done")


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        ({"garbage": 1}, "job_id"),
        ({"job_id": "../../etc", "request": {"prompt": "x"}}, "job_id"),
        ({"job_id": "ok-1", "request": {"prompt": 5, "duration": "long"}}, "request.prompt"),
        ("just a string", "input"),
    ],
)
async def test_a_malformed_input_fails_the_workflow_not_its_tasks(
    pipeline_factory: PipelineFactory, client: Client, payload: Any, named: str
) -> None:
    async with pipeline_factory() as pipeline:
        job_id = f"direct-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow(
            "GenerationWorkflow",
            payload,
            id=job_id,
            task_queue=pipeline.settings.temporal.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
    cause = info.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == Outcome.FAILED_INPUT.value
    assert "invalid job input: " in cause.message and named in cause.message
    await assert_no_workflow_task_failed(client, job_id)


async def test_a_breaker_started_with_garbage_fails_and_is_replaced(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    """Someone starts `model-health:mini` by hand with a bad input before any job: it fails
    with the reason (no failed task), and the next job's admit starts a healthy one."""
    async with pipeline_factory() as pipeline:
        breaker_id = f"model-health:mini@{pipeline.settings.breaker.scope}"
        bad = await client.start_workflow(
            "ModelHealthWorkflow",
            {"model": 5},
            id=breaker_id,
            task_queue=pipeline.settings.temporal.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as info:
            await bad.result()
        record = await pipeline.run(GenerationRequest(prompt=f"after {uuid.uuid4().hex}"))
    assert isinstance(info.value.cause, ApplicationError)
    assert info.value.cause.type == "BreakerInvalid"
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert not any("breaker unavailable" in note for note in record.notes), record.notes
    await assert_no_workflow_task_failed(client, breaker_id, bad.result_run_id)
    await assert_no_workflow_task_failed(client, breaker_id)
    await client.get_workflow_handle(breaker_id).terminate("test done")
