"""Never pay twice, with the worker SIGKILLed while jobs are in flight and half of all creates
ambiguous (the task is made, the answer lost).

The worker runs as a real process (`python worker.py`, configured by environment like in
production), killed with SIGKILL twice mid-run and restarted; the jobs live in the dev server
and the callbacks keep arriving through the webhook receiver while no worker runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import Client

from seedance_pipeline.clients.jobs import job_result, start_job
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, JobState
from seedance_pipeline.emulator.testing import EmulatorHandle
from seedance_pipeline.stack.ports import free_port
from tests.pipeline.conftest import (
    API_KEY,
    CALLBACK_SECRET,
    pipeline_overrides,
    settings_env,
)

ROOT = Path(__file__).resolve().parents[2]
JOBS = 12


async def _spawn_worker(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    handle = log.open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stdout=handle, stderr=handle
    )


async def test_sigkill_and_ambiguous_creates_never_pay_twice(
    client: Client,
    emulator: EmulatorHandle,
    webhook_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", CALLBACK_SECRET)
    await emulator.areset()
    word = f"crash{uuid.uuid4().hex[:8]}"
    await emulator.aset_faults(
        [{"kind": "create_ambiguous", "probability": 0.5, "match": {"prompt_contains": word}}]
    )
    overrides = pipeline_overrides(
        emulator, webhook_url, tmp_path, retries={"create_timeout_seconds": 3.0}
    )
    settings = load_settings(**overrides)  # same queues as the subprocess worker
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEEDANCE_")}
    env.update(settings_env(overrides))
    env.update(
        {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "WORKER_METRICS_PORT": str(free_port()),
            "ARK_API_KEY": API_KEY,
            "SEEDANCE_CALLBACK_SECRET": CALLBACK_SECRET,
        }
    )
    log = tmp_path / "worker.log"

    worker = await _spawn_worker(env, log)
    jobs = [
        (
            await start_job(
                client,
                settings,
                GenerationRequest(prompt=f"crash job {i} {word}", duration=4, resolution="480p"),
                job_id=f"crash-{word}-{i}",
            )
        ).job_id
        for i in range(JOBS)
    ]
    for pause in (1.5, 2.5):
        await asyncio.sleep(pause)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        await asyncio.sleep(1.0)  # callbacks keep arriving as signals while no worker runs
        worker = await _spawn_worker(env, log)
    try:
        records = await asyncio.wait_for(
            asyncio.gather(*(job_result(client.get_workflow_handle(j)) for j in jobs)),
            timeout=120,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        await worker.wait()

    tasks = await emulator.atasks()
    billed = Counter(_job_of(t, jobs) for t in tasks if t["status"] == "succeeded")
    made = Counter(_job_of(t, jobs) for t in tasks)
    assert all(r.state in (JobState.SUCCEEDED, JobState.FAILED) for r in records)
    assert max(billed.values(), default=0) <= 1, billed
    succeeded = [r for r in records if r.state == JobState.SUCCEEDED]
    assert len(succeeded) >= JOBS - 2, [(r.job_id, r.error) for r in records if r.error]
    for record in succeeded:
        assert billed[record.job_id] == 1
        assert record.provider_task_id in {
            t["id"] for t in tasks if _job_of(t, jobs) == record.job_id
        }
    assert sum(made.values()) >= JOBS


def _job_of(task: dict, jobs: list[str]) -> str | None:
    body = task.get("request") or {}
    text = next((c.get("text", "") for c in body.get("content", []) if c.get("type") == "text"), "")
    number = text.split(" ")[2] if text.startswith("crash job ") else None
    return next((j for j in jobs if number is not None and j.endswith(f"-{number}")), None)
