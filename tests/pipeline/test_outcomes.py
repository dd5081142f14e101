"""Every outcome class and every create/wait/copy fault, end to end on the dev server.

Each case injects one fault through the emulator's admin API (matched by a word in the
prompt), runs a job, and asserts the final outcome, the provider's error kept verbatim, and
how many provider tasks the job created (from `/_emulator/tasks`): never more than one billed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from seedance_pipeline.core.models import GenerationRequest, Outcome, Reference
from tests.pipeline.conftest import Pipeline, PipelineFactory

OUTPUT_MODERATION_MESSAGE = (
    "The request failed because the output video may be related to copyright restrictions."
)


@dataclass(frozen=True)
class Case:
    name: str
    faults: list[dict[str, Any]]
    outcome: Outcome
    tasks: int
    error_code: str | None = None
    error_message: str | None = None
    request: dict[str, Any] = field(default_factory=dict)
    callbacks: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def rule(kind: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, **params}


CASES = [
    Case(
        "input-text-moderation",
        [rule("input_moderation")],
        Outcome.REJECTED_MODERATION,
        0,
        "InputTextSensitiveContentDetected",
    ),
    Case(
        "input-image-face",
        [
            rule(
                "input_moderation",
                code="InputImageSensitiveContentDetected.PrivacyInformation",
                content_index=1,
            )
        ],
        Outcome.REJECTED_MODERATION,
        0,
        "InputImageSensitiveContentDetected.PrivacyInformation",
        request={"references": (Reference(url="https://cdn.example.com/face.png"),)},
        settings={"references": {"check": False}},  # the provider's own check is under test
    ),
    Case(
        "output-moderation-not-retried",
        [rule("output_moderation")],
        Outcome.REJECTED_MODERATION,
        1,
        "OutputVideoSensitiveContentDetected.PolicyViolation",
        OUTPUT_MODERATION_MESSAGE,
    ),
    Case(
        "bad-key-401",
        [],
        Outcome.FAILED_INPUT,
        0,
        "AuthenticationError",
        env={"ARK_API_KEY": "ek-wrong-key-000000"},
    ),
    Case("overdue-403", [rule("overdue_403")], Outcome.FAILED_QUOTA, 0, "AccountOverdueError"),
    Case(
        "model-not-open-404", [rule("model_not_open_404")], Outcome.FAILED_INPUT, 0, "ModelNotOpen"
    ),
    Case("create-5xx-then-ok", [rule("create_5xx", max_hits=2)], Outcome.SUCCEEDED, 1),
    Case(
        "create-429-then-ok",
        [rule("create_429", retry_after=0.2, max_hits=2)],
        Outcome.SUCCEEDED,
        1,
    ),
    Case("create-dropped-then-ok", [rule("create_drop", max_hits=1)], Outcome.SUCCEEDED, 1),
    Case(
        "ambiguous-create-reset-callbacks",
        [rule("create_ambiguous", max_hits=1)],
        Outcome.SUCCEEDED,
        1,
    ),
    Case(
        "ambiguous-create-reset-polling",
        [rule("create_ambiguous", max_hits=1)],
        Outcome.SUCCEEDED,
        1,
        callbacks=False,
    ),
    Case(
        "ambiguous-create-timeout",
        [rule("create_ambiguous", mode="delay", delay_seconds=2.5, max_hits=1)],
        Outcome.SUCCEEDED,
        1,
        settings={"retries": {"http_timeout_seconds": 1.0}},
    ),
    Case("get-5xx-retried", [rule("get_5xx", max_hits=2)], Outcome.SUCCEEDED, 1),
    Case(
        "internal-failure-retried-once",
        [rule("internal_failure", max_hits=1)],
        Outcome.SUCCEEDED,
        2,
    ),
    Case("expired-retried-once", [rule("expire", max_hits=1)], Outcome.SUCCEEDED, 2),
    Case(
        "truncated-download-retried", [rule("truncated_download", max_hits=1)], Outcome.SUCCEEDED, 1
    ),
    Case(
        "url-always-expired",
        [rule("url_expires_early", ttl_seconds=0)],
        Outcome.FAILED_INFRA,
        1,
        "OutputExpired",
    ),
    Case("slow-download", [rule("slow_download", bytes_per_second=400_000)], Outcome.SUCCEEDED, 1),
    Case(
        "create-5xx-exhausts-fallback-chain",
        [rule("create_5xx")],
        Outcome.FAILED_INFRA,
        0,
        "InternalServiceError",
        settings={"retries": {"create_attempts": 2}},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_fault(
    case: Case, pipeline_factory: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    word = f"fault{uuid.uuid4().hex[:10]}"
    faults = [{**f, "match": {"prompt_contains": word}} for f in case.faults]
    async with pipeline_factory(callbacks=case.callbacks, **case.settings) as pipeline:
        await pipeline.emulator.aset_faults(faults)
        request = GenerationRequest(
            **{"prompt": f"{case.name} {word}", "duration": 4, "resolution": "480p", **case.request}
        )
        record = await pipeline.run(request)
    tasks = await pipeline.tasks_for(record)
    assert record.outcome == case.outcome, (record.error, record.notes)
    assert len(tasks) == case.tasks, [t["status"] for t in tasks]
    assert sum(1 for t in tasks if t["status"] == "succeeded") <= 1
    if case.error_code is not None:
        assert record.error is not None and record.error.code == case.error_code
    if case.error_message is not None:
        assert record.error is not None and record.error.message == case.error_message
    if case.outcome == Outcome.SUCCEEDED:
        assert record.provider_task_id in {t["id"] for t in tasks}
        assert record.video_sha256 and record.video_bytes
    await _verbatim_in_manifest(pipeline, record)


async def _verbatim_in_manifest(pipeline: Pipeline, record: Any) -> None:
    import json
    from pathlib import Path
    from urllib.parse import urlsplit

    manifest = json.loads(Path(urlsplit(record.manifest_uri).path).read_text())
    assert manifest["outcome"] == record.outcome.value
    if record.error is not None:
        assert manifest["error"]["code"] == record.error.code
        assert manifest["error"]["message"] == record.error.message


async def test_invalid_request_started_directly_costs_nothing(pipeline: Pipeline) -> None:
    """Bypassing the starter, the workflow still refuses the request before any create."""
    from seedance_pipeline.core.models import GenerationInput
    from seedance_pipeline.workflows.generation import GenerationWorkflow

    before = await pipeline.create_calls()
    job = f"invalid-{uuid.uuid4().hex[:8]}"
    handle = await pipeline.client.start_workflow(
        GenerationWorkflow.run,
        GenerationInput(
            job_id=job, request=GenerationRequest(prompt="x", duration=99, resolution="4k")
        ),
        id=job,
        task_queue=pipeline.settings.temporal.task_queue,
    )
    record = await pipeline.result(handle.id)
    assert record.outcome == Outcome.FAILED_INPUT
    assert record.error and "duration" in record.error.message
    assert "resolution" in record.error.message
    assert await pipeline.create_calls() == before


async def test_task_deleted_at_the_provider_ends_failed_infra(
    pipeline_factory: PipelineFactory,
) -> None:
    """A task deleted behind the job's back (GET answers 404) ends the job failed_infra with the
    provider's answer, instead of polling forever."""
    import asyncio

    from seedance_pipeline.clients.jobs import poke_job

    slow_poll = {"polling": {"first_poll_factor": 2000.0, "max_interval_seconds": 600.0}}
    async with pipeline_factory(callbacks=False, **slow_poll) as pipeline:
        job = await pipeline.start(
            GenerationRequest(prompt=f"deleted {uuid.uuid4().hex}", duration=4, resolution="480p")
        )
        task_id = None
        for _ in range(100):
            record = await pipeline.status(job)
            tasks = await pipeline.tasks_for(record)
            if tasks and tasks[0]["status"] == "succeeded":
                task_id = tasks[0]["id"]
                break
            await asyncio.sleep(0.05)
        assert task_id is not None
        async with pipeline.emulator.async_client() as http:
            assert (await http.delete(f"/contents/generations/tasks/{task_id}")).status_code == 200
        await poke_job(pipeline.client, job)
        record = await pipeline.result(job)
    assert record.outcome == Outcome.FAILED_INFRA
    assert record.error and record.error.code == "NotFound"
    assert record.error.http_status == 404
