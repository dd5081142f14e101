"""`/v1/batches`: every row validated before any starts; progress counts; idempotent resend."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from seedance_pipeline.api_client import ApiError, BatchCreate, JobCreate
from tests.api.conftest import ApiEnv


async def test_one_bad_row_starts_nothing_and_every_problem_is_named(api: ApiEnv) -> None:
    before = await api.pipeline.create_calls()
    word = uuid.uuid4().hex[:8]
    body = {
        "rows": [
            {"prompt": f"ok {word}"},
            {"prompt": f"too long {word}", "duration": 99},
            {"prompt": f"bad res {word}", "model": "mini", "resolution": "4k"},
        ]
    }
    with pytest.raises(ApiError) as refused:
        await api.client.create_batch(body)
    assert refused.value.status == 422
    fields = {f.field for f in refused.value.fields}
    assert {"rows[1].duration", "rows[2].resolution"} <= fields
    await asyncio.sleep(0.5)
    assert (await api.client.list_jobs()).items == []
    assert await api.pipeline.create_calls() == before


async def test_batch_progress_and_idempotent_resend(api: ApiEnv) -> None:
    word = uuid.uuid4().hex[:8]
    body = BatchCreate(
        rows=[JobCreate(prompt=f"row {i} {word}") for i in range(3)], metadata={"run": word}
    )
    key = f"batch-{word}"
    created = await api.client.create_batch(body, idempotency_key=key)
    assert created.total == 3 and len(created.jobs) == 3
    again = await api.client.create_batch(body, idempotency_key=key)
    assert again.batch_id == created.batch_id
    for _ in range(300):
        progress = await api.client.get_batch(created.batch_id)
        if progress.finished == 3:
            break
        await asyncio.sleep(0.2)
    assert progress.total == 3 and progress.by_outcome == {"succeeded": 3}
    assert sorted(j.job_id for j in progress.jobs) == sorted(j.job_id for j in created.jobs)
    listed = await api.client.list_jobs(batch=created.batch_id)
    assert len(listed.items) == 3
    tasks = [t for t in await api.pipeline.emulator.atasks() if word in str(t)]
    assert len(tasks) == 3, "resending the batch started no second provider task"
    with pytest.raises(ApiError) as other:
        await api.other.get_batch(created.batch_id)
    assert other.value.status == 404
    changed = body.model_copy(update={"metadata": {"run": "other"}})
    with pytest.raises(ApiError) as reused:
        await api.client.create_batch(changed, idempotency_key=key)
    assert reused.value.code == "idempotency_key_reused"
