"""Timer and deadline paths under the time-skipping server, with the real activities talking
to the emulator over HTTP (polling only: the time-skipping server is kept to timer paths)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from seedance_pipeline.clients.jobs import job_result, start_job
from seedance_pipeline.core.models import GenerationRequest, JobRecord, Outcome
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from seedance_pipeline.worker import running_workers
from tests.conftest import shared_media_dir
from tests.pipeline.conftest import (
    API_KEY,
    CALLBACK_SECRET,
    EMULATOR_SETTINGS,
    pipeline_settings,
)


@contextlib.asynccontextmanager
async def ts_pipeline(
    ts_client: Client, emulator: EmulatorHandle, tmp: Path, **overrides: Any
) -> AsyncIterator[Any]:
    settings = pipeline_settings(emulator, "", tmp, callbacks=False, **overrides)
    async with running_workers(ts_client, settings):
        yield settings


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARK_API_KEY", API_KEY)
    monkeypatch.setenv("SEEDANCE_CALLBACK_SECRET", CALLBACK_SECRET)


async def _run(client: Client, settings: Any, request: GenerationRequest) -> JobRecord:
    started = await start_job(client, settings, request, job_id=f"ts-{uuid.uuid4().hex[:12]}")
    assert started.handle is not None
    for _ in range(10):
        try:
            return await job_result(started.handle)
        except RuntimeError as exc:
            # Under load the Java test server's long poll can end with an empty page while the
            # workflow still runs ("No completion event found"): ask again.
            if "No completion event" not in str(exc):
                raise
    raise AssertionError("workflow did not complete")


LONG_LIVED = 10 * 365 * 86_400
"""Seconds: the skipped clock can run days ahead of the emulator's wall clock, which signs the
output URLs and keeps the task. A URL signed for a day would look expired to the copy's
deadline (`workflow.now()` past it) although the host still serves it."""


async def test_job_succeeds_by_polling_under_time_skipping(
    own_ts_client: Client, tmp_path: Path
) -> None:
    """The full job (resolve, create, poll on timers, copy, ledger, manifest) on skipped time.

    A server of its own, whose clock starts at the wall clock the emulator signs URLs with: the
    shared one's clock is pushed on by whatever earlier tests left running (an entity's or a
    follower's timers are skipped through while nothing else runs), and in CI it had reached
    ten years ahead, past even LONG_LIVED, so the copy judged a live URL expired."""
    with running_emulator(
        data_dir=tmp_path / "emulator",
        media_dir=shared_media_dir(),
        **EMULATOR_SETTINGS,
        url_ttl=LONG_LIVED,
        retention_hours=LONG_LIVED / 3600,
    ) as emulator:
        await _happy_path(own_ts_client, emulator, tmp_path)


async def _happy_path(ts_client: Client, emulator: EmulatorHandle, tmp_path: Path) -> None:
    retention = {"retention_hours": LONG_LIVED / 3600}
    async with ts_pipeline(
        ts_client,
        emulator,
        tmp_path,
        models={"mini": {"execution_deadline_seconds": 3600}},
        routes={"byteplus": retention, "volcengine": retention},
    ) as settings:
        record = await _run(
            ts_client,
            settings,
            GenerationRequest(prompt="time skipping happy path", resolution="480p", duration=5),
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.polls >= 1
    assert record.video_bytes and record.video_bytes > 10_000
    assert Path(tmp_path / "outputs").exists()


async def test_stuck_task_ends_at_the_execution_deadline(
    ts_client: Client, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """A task stuck in `running` ends failed_infra at the model's execution deadline (30 min of
    workflow time, skipped), saying the provider may still bill it; no second task is made."""
    await emulator.areset()
    await emulator.aset_faults([{"kind": "stuck", "match": {"prompt_contains": "stuck-ts"}}])
    async with ts_pipeline(
        ts_client,
        emulator,
        tmp_path,
        capacity={"enabled": False},
        polling={"max_interval_seconds": 120},
        models={"mini": {"execution_deadline_seconds": 1800, "queue_deadline_seconds": 100_000}},
    ) as settings:
        record = await _run(ts_client, settings, GenerationRequest(prompt="stuck-ts job"))
    # The job's follower would poll the stuck task on, and the test server stops skipping
    # time for every later test while it runs: it goes now (and the gate stays off, as below).
    for follower in record.followers:
        await ts_client.get_workflow_handle(follower).terminate("test over")
    await emulator.aset_faults([])
    assert record.outcome == Outcome.FAILED_INFRA
    assert record.error and record.error.code == "ExecutionDeadlineExceeded"
    assert "may still bill" in record.error.message
    tasks = [t for t in await emulator.atasks() if "stuck-ts" in str(t)]
    assert len(tasks) == 1
    assert record.finished_at and record.submitted_at
    assert (record.finished_at - record.submitted_at).total_seconds() >= 1800


async def test_a_three_minute_read_outage_is_waited_out(
    own_ts_client: Client, emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """Every GET and every list read fails for more than three minutes of workflow time (the
    queue deadline of 60 s passes in the middle); the task succeeded and billed meanwhile.
    Each read retries a few times, then the job waits on its poll timers (skipped here) and
    reads again: it ends succeeded with the video stored, never judged at a deadline it could
    not read at. Capacity is off: the Java test server stops skipping time while the gate's
    entity runs. A server of its own: the shared one skips retry backoffs or not depending on
    what earlier tests left behind, and this test's 16 reads of 3 attempts must be skipped."""
    await emulator.areset()
    word = f"outage{uuid.uuid4().hex[:8]}"
    gets = {"kind": "get_5xx", "match": {"prompt_contains": word}, "max_hits": 3 * 16}
    await emulator.aset_faults([gets, {"kind": "list_5xx", "max_hits": 1000}])
    async with ts_pipeline(
        own_ts_client,
        emulator,
        tmp_path,
        capacity={"enabled": False},
        polling={"max_interval_seconds": 60},
        models={"mini": {"execution_deadline_seconds": 3600}},
    ) as settings:
        record = await _run(
            own_ts_client, settings, GenerationRequest(prompt=f"a fox {word}", duration=4)
        )
    stats = await emulator.astats()
    await emulator.aset_faults([])
    assert stats["faults"]["get_5xx"] == 3 * 16
    assert record.outcome == Outcome.SUCCEEDED, record.error
    assert record.video_uri and record.tokens
    assert record.unanswered_gets == 16
    assert record.finished_at and record.submitted_at
    assert (record.finished_at - record.submitted_at).total_seconds() >= 180
    assert any("past the queue deadline; the provider does not answer" in n for n in record.notes)
