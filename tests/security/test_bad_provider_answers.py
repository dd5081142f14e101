"""Attacks running jobs with broken provider answers (emulator faults `get_bad_body` and
`create_bad_body`): malformed JSON, a JSON list, missing fields, wrong types, an unknown
status and a body of several MB, on GET task and on create.

A job meeting one either recovers within a bounded number of broken answers or ends
`failed_infra` with a clear error; never a failed workflow task (read from its history), never
a second paid task for one job. Persistent faults run on the time-skipping server, where the
activity's retry back-off (about 90 s) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from seedance_pipeline.clients.jobs import job_result, start_job
from seedance_pipeline.core.models import GenerationRequest, JobRecord, Outcome
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle
from seedance_pipeline.worker import running_workers
from tests.pipeline.conftest import API_KEY, CALLBACK_SECRET, PipelineFactory, pipeline_settings
from tests.security.history import assert_no_workflow_task_failed

SHAPES = ["not_json", "not_object", "missing_fields", "wrong_types", "unknown_status", "huge"]


def _word() -> str:
    return f"bad{uuid.uuid4().hex[:10]}"


async def _rule_hits(emulator: EmulatorHandle) -> dict[str, int]:
    rules = (await emulator.aadmin("GET", "/_emulator/faults"))["rules"]
    return {rule["name"]: rule["hits"] for rule in rules}


async def test_jobs_recover_from_a_few_broken_get_answers(
    pipeline_factory: PipelineFactory, client: Client
) -> None:
    """Two broken GET answers of each shape, then healthy ones: every job succeeds, after
    exactly two broken answers, with one task each."""
    words = {shape: _word() for shape in SHAPES}
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults(
            [
                {
                    "kind": "get_bad_body",
                    "name": shape,
                    "shape": shape,
                    "max_hits": 2,
                    "match": {"prompt_contains": word},
                }
                for shape, word in words.items()
            ]
        )
        records = await asyncio.gather(
            *(
                pipeline.run(GenerationRequest(prompt=f"get {w}", duration=4, resolution="480p"))
                for w in words.values()
            )
        )
        hits = await _rule_hits(pipeline.emulator)
        tasks = [await pipeline.tasks_for(r) for r in records]
    assert [r.outcome for r in records] == [Outcome.SUCCEEDED] * len(SHAPES), [
        r.error for r in records
    ]
    assert hits == dict.fromkeys(SHAPES, 2)
    assert [len(t) for t in tasks] == [1] * len(SHAPES)
    for record in records:
        await assert_no_workflow_task_failed(client, record.job_id)


@pytest.mark.parametrize("shape", ["not_json", "missing_fields", "wrong_types", "huge"])
async def test_a_broken_create_answer_is_reconciled_not_paid_twice(
    pipeline_factory: PipelineFactory, client: Client, shape: str
) -> None:
    """The task was made but its answer is broken: the create is ambiguous, the task announces
    itself on the job's callback URL and is adopted; no second create."""
    word = _word()
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults(
            [
                {
                    "kind": "create_bad_body",
                    "shape": shape,
                    "max_hits": 1,
                    "match": {"prompt_contains": word},
                }
            ]
        )
        record = await pipeline.run(
            GenerationRequest(prompt=f"create {word}", duration=4, resolution="480p")
        )
        tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert len(tasks) == 1 and tasks[0]["faults"] == [f"create_bad_body:{shape}"]
    assert record.provider_task_id == tasks[0]["id"]
    assert any("ambiguous" in note for note in record.notes), record.notes
    await assert_no_workflow_task_failed(client, record.job_id)


# -- persistent faults, on the time-skipping server -------------------------------------------


@contextlib.asynccontextmanager
async def _ts_pipeline(
    ts_client: Client, emulator: EmulatorHandle, tmp: Path, **overrides: Any
) -> AsyncIterator[Settings]:
    # The capacity gate is off here: these are timer paths for the time-skipping server, which
    # stops skipping time while the gate's workflow runs beside the job (91 s of real GET
    # backoff instead of none); the gate itself is covered on the dev server.
    settings = pipeline_settings(
        emulator, "", tmp, callbacks=False, capacity={"enabled": False}, **overrides
    )
    async with running_workers(ts_client, settings):
        yield settings


async def _ts_run(client: Client, settings: Settings, request: GenerationRequest) -> JobRecord:
    started = await start_job(client, settings, request, job_id=f"ts-{uuid.uuid4().hex[:12]}")
    assert started.handle is not None
    for _ in range(10):
        try:
            return await job_result(started.handle)
        except RuntimeError as exc:  # the Java test server's empty long-poll page; ask again
            if "No completion event" not in str(exc):
                raise
    raise AssertionError("workflow did not complete")


@pytest.fixture
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", CALLBACK_SECRET)


@pytest.mark.parametrize(
    ("shape", "says"),
    [
        ("unknown_status", "status = 'exploded'"),
        ("not_json", "not JSON"),
        ("huge", "larger than 2,097,152 bytes"),
    ],
)
async def test_persistently_broken_get_answers_are_read_around_through_the_list(
    pipeline_factory: PipelineFactory, shape: str, says: str
) -> None:
    """Every GET of the task answers garbage: each is a note naming the problem (bounded, not
    the whole body), never the job's end. The signed callback says the task succeeded; the
    GET cannot confirm it, so the provider's list does, and the job stores the video. Nothing
    billed is lost, and the job does not sit out its execution deadline."""
    word = _word()
    async with pipeline_factory() as pipeline:
        await pipeline.emulator.aset_faults(
            [{"kind": "get_bad_body", "shape": shape, "match": {"prompt_contains": word}}]
        )
        record = await pipeline.run(
            GenerationRequest(prompt=f"persistent {word}", duration=4, resolution="480p")
        )
        tasks = await pipeline.tasks_for(record)
    assert record.outcome == Outcome.SUCCEEDED, (record.error, record.notes)
    assert record.video_uri and record.tokens == tasks[0]["billed_tokens"]
    unanswered = [n for n in record.notes if "did not answer a GET (ProviderBadResponse" in n]
    assert unanswered and says in unanswered[0] and all(len(n) < 1000 for n in record.notes)
    assert f"task {tasks[0]['id']} read from the provider's list: succeeded" in record.notes
    assert len(tasks) == 1 and record.unanswered_gets >= 1
    await assert_no_workflow_task_failed(pipeline.client, record.job_id)


async def test_creates_answered_with_garbage_and_no_task_stop(
    ts_client: Client, emulator: EmulatorHandle, tmp_path: Path, _keys: None
) -> None:
    """Every create answers 200 with a broken body and makes no task: each is ambiguous, the
    provider's list shows nothing, so a new create is safe; but not forever. The job stops
    after the configured create attempts per model and ends failed_infra."""
    word = _word()
    await emulator.areset()
    await emulator.aset_faults(
        [
            {
                "kind": "create_bad_body",
                "shape": "missing_fields",
                "creates_task": False,
                "match": {"prompt_contains": word},
            }
        ]
    )
    async with _ts_pipeline(
        ts_client, emulator, tmp_path, models={"mini": {"fallback": None}}
    ) as settings:
        record = await asyncio.wait_for(
            _ts_run(
                ts_client,
                settings,
                GenerationRequest(prompt=f"no task {word}", duration=4, resolution="480p"),
            ),
            timeout=60,
        )
    hits = (await emulator.astats())["faults"].get("create_bad_body", 0)
    assert record.outcome == Outcome.FAILED_INFRA, record.error
    assert record.error is not None and "without a task id" in record.error.message
    assert hits == settings.retries.create_attempts
    assert not [t for t in await emulator.atasks() if word in str(t["request"])]
    await assert_no_workflow_task_failed(ts_client, record.job_id)
