"""End to end through the CLI: `starter.py generate --wait --json` as a user runs it, against
the dev server, with the worker, emulator and webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.pipeline.conftest import Pipeline

ROOT = Path(__file__).resolve().parents[2]


async def starter(
    client: Client, pipeline: Pipeline, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop (the worker under test shares it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_")}
    env.update(
        {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "SEEDANCE_TEMPORAL__TASK_QUEUE": pipeline.settings.temporal.task_queue,
            "SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE": pipeline.settings.temporal.submit_task_queue,
        }
    )
    env.pop("ARK_API_KEY", None)  # the starter never needs the provider key
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


def _json(out: str) -> dict[str, Any]:
    return json.loads(out[out.index("{") :])


async def test_generate_wait_json_reports_the_whole_record(
    client: Client, pipeline: Pipeline
) -> None:
    """The JSON record has every field a user needs; a second start returns the same job."""
    job = f"e2e-starter-{uuid.uuid4().hex[:8]}"
    result = await starter(
        client,
        pipeline,
        "generate",
        "starter e2e fox",
        "--model",
        "mini",
        "--duration",
        "5",
        "--resolution",
        "480p",
        "--keep-last-frame",
        "--wait",
        "--json",
        "--job-id",
        job,
    )
    assert result.returncode == 0, result.stderr
    record = _json(result.stdout)
    for key in (
        "job_id",
        "state",
        "outcome",
        "route",
        "model_id",
        "provider_task_id",
        "resolution",
        "duration",
        "tokens",
        "cost",
        "currency",
        "video_uri",
        "manifest_uri",
        "provider_video_url",
        "error",
        "timestamps",
    ):
        assert key in record, key
    assert record["job_id"] == job
    assert record["outcome"] == "succeeded"
    assert record["last_frame_uri"]
    assert "Fatal Python error" not in result.stderr

    again = await starter(
        client,
        pipeline,
        "generate",
        "starter e2e fox",
        "--model",
        "mini",
        "--duration",
        "5",
        "--resolution",
        "480p",
        "--keep-last-frame",
        "--json",
        "--job-id",
        job,
    )
    assert again.returncode == 0, again.stderr
    assert _json(again.stdout)["existed"] is True
    assert len(await pipeline.tasks_for(await pipeline.status(job))) == 1, (
        "a duplicate start must not pay twice"
    )

    shown = await starter(client, pipeline, "status", job, "--json")
    assert shown.returncode == 0 and _json(shown.stdout)["video_uri"] == record["video_uri"]


async def test_invalid_request_is_refused_before_anything_starts(
    client: Client, pipeline: Pipeline
) -> None:
    before = await pipeline.create_calls()
    result = await starter(
        client, pipeline, "generate", "too long", "--duration", "30", "--resolution", "1080p"
    )
    assert result.returncode == 2
    assert "duration" in result.stderr and "resolution" in result.stderr
    assert "480p, 720p" in result.stderr
    assert await pipeline.create_calls() == before


async def test_unknown_job_says_so(client: Client, pipeline: Pipeline) -> None:
    result = await starter(client, pipeline, "status", "no-such-job-42")
    assert result.returncode == 4
    assert "no job with ID 'no-such-job-42'" in result.stderr


def test_no_temporal_says_how_to_start_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_")}
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"
    result = subprocess.run(
        [sys.executable, "starter.py", "status", "x"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert "make up" in result.stderr
