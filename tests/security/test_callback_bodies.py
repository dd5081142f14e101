"""Attacks a real running job through the webhook receiver with generated callback bodies under
a valid token (the URL the provider was given): random bytes, JSON of every type, task objects
with wrong types, unknown statuses, other tasks' IDs, deep nesting, oversized bodies.

Every answer is 200 (accepted or ignored) or a 4xx whose JSON `error` says what was wrong
(never the receiver's catch-all for its own bugs), never a 5xx; oversized bodies are 413. The
bodies that pass go into the GenerationWorkflow as signals: not one workflow task fails, and
the job is still waiting on its real task afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from seedance_pipeline.clients.jobs import job_status
from seedance_pipeline.core.callback_token import make_token
from seedance_pipeline.core.models import GenerationRequest, JobState
from seedance_pipeline.webhook.app import DEFAULT_MAX_BODY_BYTES
from tests.pipeline.conftest import CALLBACK_SECRET, PipelineFactory
from tests.security.history import assert_no_workflow_task_failed

SAFETY_NET = "callback could not be processed"
NO_POLL = {"polling": {"callback_margin_factor": 2000.0, "max_interval_seconds": 600.0}}


@dataclass
class StuckJob:
    job_id: str
    task_id: str
    path: str
    http: httpx.AsyncClient


@pytest_asyncio.fixture
async def stuck_job(
    pipeline_factory: PipelineFactory, client: Client, webhook_url: str
) -> AsyncIterator[StuckJob]:
    word = uuid.uuid4().hex[:10]
    async with pipeline_factory(**NO_POLL) as pipeline:
        await pipeline.emulator.aset_faults([{"kind": "stuck", "match": {"prompt_contains": word}}])
        job = await pipeline.start(GenerationRequest(prompt=f"bodies {word}", duration=4))
        record = await pipeline.status(job)
        for _ in range(100):
            record = await pipeline.status(job)
            if record.provider_task_id and record.state == JobState.RUNNING:
                break
            await asyncio.sleep(0.1)
        assert record.provider_task_id, record
        token = make_token(job, 1, CALLBACK_SECRET.encode())
        async with httpx.AsyncClient(base_url=webhook_url, timeout=10) as http:
            yield StuckJob(job, record.provider_task_id, f"/callbacks/{token}", http)
        after = await pipeline.status(job)
        assert after.state == JobState.RUNNING and after.outcome is None, after
        await assert_no_workflow_task_failed(client, job)
        await client.get_workflow_handle(job).cancel()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
statuses = st.one_of(
    st.sampled_from(["queued", "running", "succeeded", "failed", "expired", "cancelled"]),
    st.sampled_from(["paused", "SUCCEEDED", ""]),
    json_values,
)


def task_objects(own_id: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.just(own_id), st.text(max_size=140), json_values),
            "status": statuses,
            "error": st.one_of(
                st.fixed_dictionaries({"code": json_values, "message": json_values}), json_values
            ),
            "content": st.one_of(st.fixed_dictionaries({"video_url": json_values}), json_values),
            "usage": st.one_of(
                st.fixed_dictionaries({"completion_tokens": json_values}), json_values
            ),
            "created_at": st.one_of(st.integers(-(2**40), 2**40), json_values),
            "updated_at": json_values,
            "seed": json_values,
            "duration": json_values,
        },
    )


def bodies(own_id: str) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=500),
        task_objects(own_id).map(lambda d: json.dumps(d).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(DEFAULT_MAX_BODY_BYTES + 1, DEFAULT_MAX_BODY_BYTES + 5000).map(
            lambda n: b'{"id": "' + b"x" * n + b'"}'
        ),
    )


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
@example(data=None)
async def test_callback_bodies_are_accepted_or_refused_with_a_reason(
    stuck_job: StuckJob, data: st.DataObject | None
) -> None:
    if data is None:  # the job's own task, claiming success: accepted, then checked by a GET
        body = json.dumps({"id": stuck_job.task_id, "status": "succeeded"}).encode()
    else:
        body = data.draw(bodies(stuck_job.task_id))
    resp = await stuck_job.http.post(
        stuck_job.path, content=body, headers={"content-type": "application/json"}
    )
    answer = resp.json()
    assert resp.status_code == 200 or 400 <= resp.status_code < 500, (resp.status_code, answer)
    if resp.status_code == 200:
        assert answer["status"] in ("accepted", "ignored")
    else:
        assert answer["error"] and answer["error"] != SAFETY_NET, answer
    if len(body) > DEFAULT_MAX_BODY_BYTES:
        assert resp.status_code == 413 and "exceeds" in answer["error"]


async def test_a_flood_of_callbacks_for_other_tasks_is_counted_not_noted(
    stuck_job: StuckJob, client: Client
) -> None:
    """Anyone holding the URL can post as often as they like: the job counts what it ignores
    but its record (query result, manifest) does not grow with every post."""
    body = json.dumps({"id": "cgt-20260101000000-other", "status": "running"}).encode()
    answers = await asyncio.gather(
        *(stuck_job.http.post(stuck_job.path, content=body) for _ in range(60))
    )
    assert {a.status_code for a in answers} == {200}
    record = await job_status(client, stuck_job.job_id)
    for _ in range(50):
        if record.callbacks_ignored >= 60:
            break
        await asyncio.sleep(0.1)
        record = await job_status(client, stuck_job.job_id)
    assert record.callbacks_ignored >= 60
    ignored_notes = [n for n in record.notes if "callback" in n]
    assert 1 <= len(ignored_notes) <= 6, ignored_notes
