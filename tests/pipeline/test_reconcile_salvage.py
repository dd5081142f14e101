"""The scheduled reconcile salvages billed work a job never stored, and says so.

The worker keeps one Temporal Schedule per route (`[reconcile] every_minutes`); the test
triggers it instead of waiting an hour. The copy is prevented past the job's end: the file host
cuts every download of this job's video while the job is storing, and the job is terminated
there (an operator's `terminate`, a lost workflow: nothing of the job runs any more). The
scheduled run finds the billed success without its ledger row, starts a salvage follower that
records the provider's tokens and stores the video with its manifest; the next scheduled report
is clean, and `starter.py reconcile` agrees.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.clients.reconcile_schedule import schedule_id
from seedance_pipeline.core.follow import FollowOutcome, FollowTaskResult
from seedance_pipeline.core.models import GenerationRequest, JobState, LedgerEntry
from seedance_pipeline.core.reconcile import ReconcileResult
from tests.clients.support import acli
from tests.pipeline.conftest import Pipeline, PipelineFactory


@pytest_asyncio.fixture
async def scheduled(pipeline_factory: PipelineFactory) -> AsyncIterator[Pipeline]:
    """The schedule on (hourly, as shipped) and no grace: a finished task is judged at once."""
    async with pipeline_factory(reconcile={"every_minutes": 60, "grace_minutes": 0}) as p:
        yield p


@pytest.fixture
def shell(client: Client, scheduled: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI pointed at the stack (it runs in this process, beside the worker, so the key is
    in its environment too; the comparison runs on the worker either way)."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__TASK_QUEUE", scheduled.settings.temporal.task_queue)
    yield


async def run_schedule(pipeline: Pipeline) -> ReconcileResult:
    """Trigger the route's schedule now and wait for that run's report."""
    handle = pipeline.client.get_schedule_handle(
        schedule_id(pipeline.settings.temporal.task_queue, "byteplus")
    )
    before = len((await handle.describe()).info.recent_actions)
    await handle.trigger()
    for _ in range(300):
        actions = (await handle.describe()).info.recent_actions
        if len(actions) > before:
            action = actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            run = pipeline.client.get_workflow_handle(
                action.workflow_id, run_id=action.first_execution_run_id
            )
            return ReconcileResult.model_validate(await run.result())
        await asyncio.sleep(0.1)
    raise AssertionError("the triggered schedule started nothing in 30 s")


async def storing_until_terminated(pipeline: Pipeline, word: str) -> str:
    """Start a job whose video downloads are all cut; terminate it while it is storing."""
    cut = {"kind": "truncated_download", "fraction": 0.3, "match": {"prompt_contains": word}}
    await pipeline.emulator.aset_faults([cut])
    job_id = await pipeline.start(GenerationRequest(prompt=f"a salvaged fox {word}", duration=4))
    for _ in range(600):
        stats = await pipeline.emulator.astats()
        record = await pipeline.status(job_id)
        if record.state == JobState.STORING and stats["faults"].get("truncated_download", 0) >= 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"job {job_id} never got stuck storing")
    await pipeline.client.get_workflow_handle(job_id).terminate("the copy is prevented")
    await pipeline.emulator.aset_faults([])
    return job_id


def rows(pipeline: Pipeline, job_id: str) -> list[LedgerEntry]:
    ledger = open_ledger(pipeline.settings.ledger.url)
    try:
        return [e for e in ledger.entries() if e.job_id == job_id]
    finally:
        ledger.close()


async def test_the_scheduled_reconcile_salvages_a_video_the_job_never_stored(
    scheduled: Pipeline, shell: None
) -> None:
    job_id = await storing_until_terminated(scheduled, f"salvage{uuid.uuid4().hex[:8]}")
    record = await scheduled.status(job_id)
    assert record.provider_task_id and record.video_uri is None
    task_id = record.provider_task_id
    assert rows(scheduled, job_id) == []  # nothing recorded: the job ended before its record

    first = await run_schedule(scheduled)
    assert [(f.kind, f.task_id, f.job_id) for f in first.findings] == [
        ("unrecorded", task_id, job_id)
    ]
    salvage_id = f"task-salvage:byteplus:{task_id}"
    assert first.salvaged == [salvage_id]

    followed = scheduled.client.get_workflow_handle(salvage_id, result_type=FollowTaskResult)
    result = await followed.result()
    billed = next(t for t in await scheduled.emulator.atasks() if t["id"] == task_id)
    tokens = int(billed["billed_tokens"])
    digest = await scheduled.emulator.aadmin("GET", f"/_emulator/tasks/{task_id}/files/video.mp4")
    assert result.outcome == FollowOutcome.STORED and result.tokens == tokens > 0
    assert result.video is not None and result.manifest_uri is not None
    stored = Path(urlsplit(result.video.uri).path).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == digest["sha256"] == result.video.sha256
    assert f"/{job_id}/{record.run}/followed-1/" in result.video.uri
    manifest = json.loads(Path(urlsplit(result.manifest_uri).path).read_text())
    assert manifest["handed_over_because"] == "salvaged by reconcile (unrecorded)"
    [row] = rows(scheduled, job_id)
    assert (row.provider_task_id, row.tokens, row.billed, row.run) == (
        task_id,
        tokens,
        True,
        record.run,
    )
    assert row.outcome == FollowOutcome.STORED.value

    second = await run_schedule(scheduled)
    assert second.findings == [] and second.salvaged == []
    assert sum(r.matched for r in second.routes) == 1

    last = await acli("reconcile", "--last", "--route", "byteplus", "--json")
    assert last.code == 0, last.out + last.err
    [report] = json.loads(last.out)
    assert report["report"]["ok"] is True and report["workflow_id"].startswith(
        "reconcile-scheduled:"
    )
    now = await acli("reconcile", "--route", "byteplus", "--grace-minutes", "0")
    assert now.code == 0, now.out + now.err
    assert "no mismatch found" in now.out


async def test_reconcile_leaves_a_job_that_is_still_storing_alone(
    scheduled: Pipeline,
) -> None:
    """A job still copying its video is doing the work: nothing is salvaged under it."""
    word = f"busy{uuid.uuid4().hex[:8]}"
    cut = {"kind": "truncated_download", "fraction": 0.3, "match": {"prompt_contains": word}}
    await scheduled.emulator.aset_faults([cut])
    job_id = await scheduled.start(GenerationRequest(prompt=f"a busy fox {word}", duration=4))
    for _ in range(600):
        if (await scheduled.status(job_id)).state == JobState.STORING:
            break
        await asyncio.sleep(0.1)
    report = await run_schedule(scheduled)
    await scheduled.emulator.aset_faults([])
    assert report.salvaged == []
    assert any(f"{job_id} is still running and on it" in n for n in report.notes)
    finished = await scheduled.result(job_id)
    assert finished.video_uri is not None
