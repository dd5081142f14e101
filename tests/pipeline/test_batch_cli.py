"""`starter.py batch` and `generate` output, for people and for scripts: results on stdout,
diagnostics on stderr, full IDs and URIs when stdout is not a terminal, a dry run that
starts nothing, `--no-wait` that prints what it started, and an interrupted batch that says
what started and how to resume."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from seedance_pipeline.clients.jobs import cancel_job
from seedance_pipeline.core.pricing import cost, estimate_tokens
from tests.clients.support import ROOT, acli, plain_env
from tests.pipeline.conftest import Pipeline


@pytest.fixture
def shell(client: Client, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process CLI talks to the test's Temporal and the pipeline's queues."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__TASK_QUEUE", pipeline.settings.temporal.task_queue)
    submit = pipeline.settings.temporal.submit_task_queue
    monkeypatch.setenv("SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE", submit)
    yield


def rows_file(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


async def test_dry_run_prints_every_row_and_the_total_and_creates_nothing(
    shell: None, pipeline: Pipeline, tmp_path: Path
) -> None:
    word = uuid.uuid4().hex[:6]
    rows: list[dict[str, object]] = [
        {
            "prompt": f"dry {word} {i}",
            "duration": 4 + i % 8,
            "resolution": ("480p", "720p")[i % 2],
        }
        for i in range(25)
    ]
    path = rows_file(tmp_path, rows)
    before = await pipeline.create_calls()

    shown = await acli("batch", str(path), "--dry-run")
    as_json = await acli("batch", str(path), "--dry-run", "--json")

    assert shown.code == 0 and as_json.code == 0, shown.err + as_json.err
    plan = as_json.json()
    assert isinstance(plan, dict)
    assert len(plan["jobs"]) == 25 and [j["line"] for j in plan["jobs"]] == list(range(1, 26))
    price = pipeline.settings.models["mini"].prices["byteplus"].standard
    tokens = [
        estimate_tokens("v15", str(r["resolution"]), "16:9", int(str(r["duration"]))) for r in rows
    ]
    assert plan["total"]["tokens"] == sum(tokens)
    assert plan["total"]["cost"] == {
        "USD": pytest.approx(sum(cost(t, price) for t in tokens), abs=1e-5)
    }
    for job in plan["jobs"]:
        assert job["job_id"] in shown.out  # every row, with its full ID
    assert f"total: 25 jobs, {sum(tokens):,} tokens, about" in shown.out
    assert "USD" in shown.out and "nothing was started" in shown.err
    assert await pipeline.create_calls() == before
    assert [r for r in await pipeline.emulator.atasks() if word in json.dumps(r)] == []


async def test_no_wait_prints_the_job_ids_it_started(
    shell: None, pipeline: Pipeline, tmp_path: Path
) -> None:
    word = uuid.uuid4().hex[:6]
    path = rows_file(tmp_path, [{"prompt": f"nowait {word}", "duration": 4, "candidates": 3}])
    result = await acli("batch", str(path), "--no-wait")
    assert result.code == 0, result.err
    again = await acli("batch", str(path), "--no-wait", "--json")
    started = again.json()
    assert isinstance(started, dict) and len(started["started"]) == 3
    for job in started["started"]:
        assert job in result.out
        assert "…" not in result.out
        await pipeline.result(job)


async def test_results_go_to_stdout_in_full_and_diagnostics_to_stderr(
    shell: None, pipeline: Pipeline, tmp_path: Path
) -> None:
    job = f"output-{uuid.uuid4().hex}-a-long-idempotency-key-{'x' * 40}"
    made = await acli("generate", "a fox for scripts", "--duration", "4", "--job-id", job)
    assert made.code == 0, made.err
    assert made.out.strip() == f"job {job} started"
    assert "estimate:" in made.err and "estimate:" not in made.out
    record = await pipeline.result(job)
    shown = await acli("status", job)
    assert shown.code == 0 and "…" not in shown.out
    assert job in shown.out and str(record.video_uri) in shown.out
    path = rows_file(tmp_path, [{"prompt": "a fox for scripts", "duration": 4, "job_id": job}])
    summary = await acli("batch", str(path))
    assert summary.code == 0, summary.err
    assert job in summary.out and str(record.video_uri) in summary.out and "…" not in summary.out


async def test_an_interrupted_batch_lists_what_started_and_how_to_resume(
    client: Client, pipeline: Pipeline, tmp_path: Path
) -> None:
    word = uuid.uuid4().hex[:8]
    await pipeline.emulator.aset_faults(
        [{"kind": "stuck", "phase": "queued", "match": {"prompt_contains": word}}]
    )
    path = rows_file(
        tmp_path, [{"prompt": f"interrupt {word} {i}", "duration": 4} for i in range(5)]
    )
    env = plain_env(
        TEMPORAL_ADDRESS=client.service_client.config.target_host,
        SEEDANCE_TEMPORAL__TASK_QUEUE=pipeline.settings.temporal.task_queue,
        SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE=pipeline.settings.temporal.submit_task_queue,
        SEEDANCE_DATA_DIR=str(tmp_path),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        "batch",
        str(path),
        "--concurrency",
        "2",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    queue = pipeline.settings.temporal.task_queue
    query = f"WorkflowType = 'GenerationWorkflow' AND TaskQueue = '{queue}'"
    running: list[str] = []
    for _ in range(200):
        running = [w.id async for w in client.list_workflows(query)]
        if len(running) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(running) == 2, running
    await asyncio.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 130, err.decode()
    printed = out.decode().split()
    assert sorted(printed) == sorted(running)
    said = err.decode()
    assert "interrupted: 2 of 5 job(s) started and keep running" in said
    assert f"Resume with `starter.py batch {path}`" in said and "Traceback" not in said
    for job in running:
        await cancel_job(client, job)


async def test_audio_watermark_and_last_frame_flags_reach_the_job(
    shell: None, pipeline: Pipeline
) -> None:
    job = f"flags-{uuid.uuid4().hex[:10]}"
    made = await acli(
        "generate",
        "a fox with flags",
        "--duration",
        "4",
        "--no-generate-audio",
        "--watermark",
        "--keep-last-frame",
        "--job-id",
        job,
    )
    assert made.code == 0, made.err
    record = await pipeline.result(job)
    request = record.request
    assert request is not None
    assert (request.generate_audio, request.watermark, request.return_last_frame) == (
        False,
        True,
        True,
    )
    assert record.last_frame_uri
    [task] = await pipeline.tasks_for(record)
    sent = task.get("request") or {}
    assert sent.get("generate_audio") is False and sent.get("watermark") is True
    assert (await acli("generate", "x", "--last-frame")).code == 2  # renamed: not an input role
