"""Operator experience: batch validation and idempotent reruns, `list` by outcome, `extend`,
`regenerate` with an identical request body, and logs that carry the job's IDs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs
from temporalio.client import Client

from seedance_pipeline.clients.failures import Refused
from seedance_pipeline.clients.jobs import JobFinished, cancel_job, start_job
from seedance_pipeline.clients.ops import extend_job, list_jobs, list_query, regeneration
from seedance_pipeline.core.models import GenerationRequest, JobState, Outcome
from tests.pipeline.conftest import API_KEY, Pipeline, PipelineFactory

ROOT = Path(__file__).resolve().parents[2]


async def _starter(client: Client, pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_")}
    env.update(
        {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "SEEDANCE_TEMPORAL__TASK_QUEUE": pipeline.settings.temporal.task_queue,
            "SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE": pipeline.settings.temporal.submit_task_queue,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_batch_reports_every_bad_row_and_starts_nothing(
    client: Client, pipeline: Pipeline, tmp_path: Path
) -> None:
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"prompt": "good one", "duration": 5}),
                "{not json",
                json.dumps({"prompt": "too long", "duration": 30}),
                json.dumps({"prompt": "good two", "resolution": "480p"}),
                json.dumps({"prompt": "bad model", "model": "ultra"}),
                json.dumps({"prompt": "", "resolution": "4k"}),
            ]
        )
        + "\n"
    )
    before = await pipeline.create_calls()
    result = await _starter(client, pipeline, "batch", str(batch))
    assert result.returncode == 2
    for fragment in (
        "line 2: not valid JSON",
        "line 3: duration",
        "line 5: model",
        "line 6: prompt",
        "line 6: resolution",
        "nothing was started",
    ):
        assert fragment in result.stderr, (fragment, result.stderr)
    assert await pipeline.create_calls() == before


async def test_rerunning_a_batch_starts_no_new_jobs(
    client: Client, pipeline: Pipeline, tmp_path: Path
) -> None:
    word = uuid.uuid4().hex[:8]
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        json.dumps(
            {"prompt": f"rerun {word}", "duration": 4, "resolution": "480p", "candidates": 2}
        )
        + "\n"
    )
    first = await _starter(client, pipeline, "batch", str(batch), "--json")
    second = await _starter(client, pipeline, "batch", str(batch), "--json")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    started = [json.loads(r.stdout[r.stdout.index("{") :])["started"] for r in (first, second)]
    assert sorted(started[0]) == sorted(started[1]) and len(started[0]) == 2
    tasks = [t for t in await pipeline.emulator.atasks() if word in json.dumps(t)]
    assert len(tasks) == 2


async def test_list_filters_by_outcome(pipeline: Pipeline) -> None:
    word = f"mod{uuid.uuid4().hex[:8]}"
    await pipeline.emulator.aset_faults(
        [{"kind": "output_moderation", "match": {"prompt_contains": word}}]
    )
    moderated = await pipeline.run(GenerationRequest(prompt=f"listed {word}", duration=4))
    fine = await pipeline.run(GenerationRequest(prompt=f"listed fine {word[3:]}", duration=4))
    assert moderated.outcome == Outcome.REJECTED_MODERATION
    query = list_query(outcome="rejected_moderation")
    for _ in range(50):  # visibility is eventually consistent
        ids = {r["job_id"] for r in await list_jobs(pipeline.client, query)}
        if moderated.job_id in ids:
            break
        await asyncio.sleep(0.1)
    assert moderated.job_id in ids and fine.job_id not in ids
    with pytest.raises(ValueError):
        list_query(outcome="x' OR '1'='1")


async def test_extend_moves_the_deadline_and_refuses_finished_jobs(pipeline: Pipeline) -> None:
    word = f"ext{uuid.uuid4().hex[:8]}"
    await pipeline.emulator.aset_faults([{"kind": "stuck", "match": {"prompt_contains": word}}])
    job = await pipeline.start(GenerationRequest(prompt=f"extend {word}", duration=4))
    record = await extend_job(pipeline.client, job, 5)
    assert record.deadline_extension_minutes == 5
    with pytest.raises(Refused, match="maximum"):
        await extend_job(pipeline.client, job, 24 * 60)
    await cancel_job(pipeline.client, job)
    until = time.monotonic() + 30  # a cancel in an activity or a signal is kept (both were lost)
    while (await pipeline.status(job)).state != JobState.CANCELLED and time.monotonic() < until:
        await asyncio.sleep(0.05)
    seen = await pipeline.status(job)
    assert seen.state == JobState.CANCELLED, (seen.provider_status, seen.notes, seen.timeline)
    with pytest.raises(JobFinished, match="already finished"):
        await extend_job(pipeline.client, job, 5)


async def test_regenerate_sends_an_identical_request_body(pipeline: Pipeline) -> None:
    original = await pipeline.run(
        GenerationRequest(
            prompt=f"regenerate me {uuid.uuid4().hex[:6]}",
            duration=6,
            resolution="480p",
            ratio="9:16",
            seed=42,
            return_last_frame=True,
        )
    )
    regen = await regeneration(pipeline.client, pipeline.settings, original.job_id)
    assert regen.warnings == []
    started = await start_job(pipeline.client, pipeline.settings, regen.request)
    again = await pipeline.result(started.job_id)
    assert again.outcome == Outcome.SUCCEEDED and again.job_id != original.job_id
    bodies = {t["id"]: _body(t) for t in await pipeline.emulator.atasks()}
    assert bodies[again.provider_task_id] == bodies[original.provider_task_id]
    assert again.model_id == original.model_id


async def test_regenerate_warns_when_the_model_id_rotated(
    pipeline_factory: PipelineFactory, pipeline: Pipeline
) -> None:
    original = await pipeline.run(GenerationRequest(prompt="rotated", duration=4))
    rotated = pipeline.settings.model_copy(
        update={
            "models": {
                **pipeline.settings.models,
                "mini": pipeline.settings.models["mini"].model_copy(
                    update={"ids": {"byteplus": "dreamina-seedance-2-0-mini-270101"}}
                ),
            }
        }
    )
    regen = await regeneration(pipeline.client, rotated, original.manifest_uri or "")
    assert regen.request.model_id == original.model_id
    assert any("no longer in config" in w and "270101" in w for w in regen.warnings)


async def test_log_lines_carry_job_ids_and_never_a_key(pipeline: Pipeline) -> None:
    with capture_logs(processors=[merge_contextvars]) as logs:
        record = await pipeline.run(GenerationRequest(prompt="logged job", duration=4))
    created = [e for e in logs if e["event"] == "provider.created"]
    assert created and created[0]["job_id"] == record.job_id
    assert created[0]["task_id"] == record.provider_task_id
    assert created[0]["model_id"] == record.model_id and created[0]["submit_no"] == 1
    assert API_KEY not in str(logs)


def _body(task: dict[str, Any]) -> dict[str, Any]:
    body = dict(task.get("request") or {})
    body.pop("callback_url", None)  # names the job, so it differs by design
    return body
