"""Callbacks first, polling as repair: each way a job can learn its task's fate.

Provider API calls per job come from the emulator's request counters (create + GETs).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid

import httpx

from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.core.job_state import job_moves_forward
from seedance_pipeline.core.models import GenerationRequest, JobRecord, JobState, Outcome
from tests.pipeline.conftest import CALLBACK_SECRET, PipelineFactory

NO_POLL = {"polling": {"callback_margin_factor": 2000.0, "max_interval_seconds": 600.0}}


def word() -> str:
    return f"cb{uuid.uuid4().hex[:10]}"


def assert_forward_only(record: JobRecord) -> None:
    """Every change in the timeline is a move the state rules allow (waiting for capacity and
    submitting alternate; nothing else goes back)."""
    states = [change.state for change in record.timeline]
    assert all(job_moves_forward(a, b) for a, b in itertools.pairwise(states)), states


async def test_finishes_by_callback_alone(pipeline_factory: PipelineFactory) -> None:
    """With the repair poll pushed past the job's life, callbacks alone finish it: one create
    and one confirming GET are the only provider calls."""
    async with pipeline_factory(**NO_POLL) as pipeline:
        before = await pipeline.emulator.astats()
        record = await pipeline.run(
            GenerationRequest(prompt=f"callback only {word()}", duration=4, resolution="480p")
        )
        after = await pipeline.emulator.astats()
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.polls == 0 and record.confirm_gets == 1
    assert record.callbacks_received >= 2  # queued/running/succeeded deliveries
    calls = _delta(before, after, "create") + _delta(before, after, "get")
    assert calls == 2
    assert_forward_only(record)


async def test_finishes_by_polling_when_every_callback_is_dropped(
    pipeline_factory: PipelineFactory,
) -> None:
    w = word()
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults(
            [{"kind": "callback_drop", "match": {"prompt_contains": w}}]
        )
        record = await pipeline.run(
            GenerationRequest(prompt=f"dropped {w}", duration=4, resolution="480p")
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.callbacks_received == 0 and record.polls >= 1


async def test_finishes_by_polling_with_callbacks_off(pipeline_factory: PipelineFactory) -> None:
    async with pipeline_factory(callbacks=False) as pipeline:
        record = await pipeline.run(
            GenerationRequest(prompt=f"poll only {word()}", duration=4, resolution="480p")
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.callbacks_received == 0 and record.polls >= 1


async def test_duplicated_and_reordered_callbacks_are_harmless(
    pipeline_factory: PipelineFactory,
) -> None:
    w = word()
    async with pipeline_factory(**NO_POLL) as pipeline:
        await pipeline.emulator.aset_faults(
            [
                {"kind": "callback_duplicate", "count": 3, "match": {"prompt_contains": w}},
                {"kind": "callback_reorder", "match": {"prompt_contains": w}},
            ]
        )
        record = await pipeline.run(
            GenerationRequest(prompt=f"dup reorder {w}", duration=4, resolution="480p")
        )
        tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.callbacks_received >= 4
    assert len(tasks) == 1
    assert_forward_only(record)


async def test_callback_for_another_job_is_ignored(pipeline_factory: PipelineFactory) -> None:
    """A delivery to the wrong job's URL names a task that job does not own: ignored."""
    w = word()
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults(
            [
                {
                    "kind": "callback_wrong_job",
                    "statuses": ["succeeded"],
                    "match": {"prompt_contains": w},
                }
            ]
        )
        jobs = await asyncio.gather(
            *(
                pipeline.run(
                    GenerationRequest(prompt=f"wrong job {i} {w}", duration=4, resolution="480p")
                )
                for i in range(3)
            )
        )
    assert all(r.outcome == Outcome.SUCCEEDED for r in jobs), [r.error for r in jobs]
    assert sum(r.callbacks_ignored for r in jobs) >= 1
    assert len({r.provider_task_id for r in jobs}) == 3


async def test_forged_and_malformed_callbacks_leave_the_job_untouched(
    pipeline_factory: PipelineFactory,
    webhook_url: str,
) -> None:
    async with pipeline_factory(
        models={"mini": {"expected_latency_seconds": 5}}, **NO_POLL
    ) as pipeline:
        await pipeline.emulator.aset_faults([{"kind": "stuck"}])
        job = await pipeline.start(GenerationRequest(prompt=f"forged {word()}", duration=4))
        for _ in range(100):  # until the genuine queued + running callbacks have landed
            record = await pipeline.status(job)
            if record.state == JobState.RUNNING and record.callbacks_received >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
        before = await pipeline.status(job)
        good = make_token(job, 1, CALLBACK_SECRET.encode())
        forged = make_token(job, 1, b"not-the-secret-000000")
        task = {"id": before.provider_task_id, "status": "succeeded"}
        async with httpx.AsyncClient(base_url=webhook_url) as http:
            answers = [
                (await http.post(f"/callbacks/{forged}", json=task)).status_code,
                (await http.post(f"/callbacks/{good}", content=b"{not json")).status_code,
                (await http.post(f"/callbacks/{good}", json={"id": 5})).status_code,
                (
                    await http.post(f"/callbacks/{good}", json={**task, "status": "exploded"})
                ).status_code,
            ]
        await asyncio.sleep(0.5)
        after = await pipeline.status(job)
        await pipeline.client.get_workflow_handle(job).cancel()
    assert all(400 <= code < 500 for code in answers), answers
    assert after.callbacks_received == before.callbacks_received
    assert after.state == before.state and after.outcome is None


def _delta(before: dict, after: dict, op: str) -> int:
    from tests.pipeline.conftest import _count_op

    return _count_op(after, op) - _count_op(before, op)
