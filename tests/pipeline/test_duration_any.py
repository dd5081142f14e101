"""A job with `duration: -1` whose create is ambiguous, in polling-only mode (the shipped
default), ends with exactly one provider task (issue 15; reference section 0, C5).

The provider reports the length the model chose, never -1, so the reconciliation that looks
for the job's own task behind an ambiguous create must treat -1 as "any length". Until the
workflow's matcher does (`workflows/generation`, the listed-task filter on `duration`), the
job's own task is skipped and a second, paid create goes out: this test then fails with two
tasks.
"""

from __future__ import annotations

import uuid

from seedance_pipeline.core.models import GenerationRequest, Outcome
from tests.pipeline.conftest import PipelineFactory


async def test_ambiguous_create_with_any_duration_makes_one_task(
    pipeline_factory: PipelineFactory,
) -> None:
    word = uuid.uuid4().hex
    async with pipeline_factory(callbacks=False) as pipeline:
        await pipeline.emulator.aset_faults(
            [{"kind": "create_ambiguous", "max_hits": 1, "match": {"prompt_contains": word}}]
        )
        request = GenerationRequest(prompt=f"any length {word}", duration=-1, resolution="480p")
        record = await pipeline.run(request)
        tasks = await pipeline.tasks_for(record)
    durations = [t["request"].get("duration") for t in tasks]
    chosen = [(t["id"], t["output_frames"]) for t in tasks]
    assert len(tasks) == 1, (
        f"{len(tasks)} provider tasks for one job (asked duration {durations}, rendered "
        f"frames {chosen}): the listed task's chosen length was not matched to duration -1"
    )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.provider_task_id == tasks[0]["id"]
    assert record.duration is not None and 4 <= record.duration <= 15  # the chosen length
