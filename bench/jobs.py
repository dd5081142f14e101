"""Driving jobs through the pipeline (and the floor) and reading back what happened.

Jobs are started with `clients.jobs.start_job`, the same call `starter.py` makes. Outcomes come
from the workflow results (the job record); provider facts (the float moment a task succeeded,
calls per task) come from the emulator's task log, so nothing is inferred from the pipeline's
own view of itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench.floor_workflow import FLOOR_WORKFLOW, FloorShape, FloorWorkflow
from bench.stack import MODEL, WorkerConfig
from seedance_pipeline.clients.jobs import job_result, start_job
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, JobRecord
from seedance_pipeline.core.settings import Settings


def run_tag() -> str:
    return uuid.uuid4().hex[:6]


def worker_config(
    tag: str,
    *,
    callbacks: bool = True,
    expected_latency: float | None = None,
    storage_uri: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> WorkerConfig:
    """Fresh task queues per scenario, so counting and draining never see another's jobs.

    The per-model breakers and the capacity gates run on `<job queue>-entities`; their scopes
    give each scenario its own, instead of ones left behind on a queue whose worker has gone.
    """
    env = dict(extra_env or {})
    env.setdefault("SEEDANCE_BREAKER__SCOPE", f"bench-{tag}")
    env.setdefault("SEEDANCE_CAPACITY__SCOPE", f"bench-{tag}")
    return WorkerConfig(
        task_queue=f"bench-jobs-{tag}",
        submit_task_queue=f"bench-submit-{tag}",
        callbacks=callbacks,
        storage_uri=storage_uri,
        expected_latency_seconds=expected_latency,
        extra_env=env,
    )


def settings_for(config: WorkerConfig) -> Settings:
    """The starter's settings: only the queue names matter (requests are validated with them)."""
    return load_settings(
        temporal={
            "task_queue": config.task_queue,
            "submit_task_queue": config.submit_task_queue,
        }
    )


def request(tag: str, index: int) -> GenerationRequest:
    """The bench job: the default model, 5 s, default resolution (720p), like `starter.py`."""
    return GenerationRequest(prompt=f"bench {tag} #{index}: a red fox in snow", model=MODEL)


def job_ids(tag: str, n: int, offset: int = 0) -> list[str]:
    return [f"bench-{tag}-{i:05d}" for i in range(offset, offset + n)]


async def start_jobs(
    client: Client,
    settings: Settings,
    tag: str,
    ids: Sequence[str],
    *,
    rate_per_second: float | None = None,
    concurrency: int = 32,
) -> float:
    """Start the jobs (all at once, or paced at `rate_per_second`); returns the first start's
    wall-clock time. `concurrency` bounds start calls in flight when not paced."""
    gate = asyncio.Semaphore(concurrency)
    first = time.time()
    loop_start = time.monotonic()

    async def one(i: int, job_id: str) -> None:
        if rate_per_second:
            await asyncio.sleep(max(0.0, loop_start + i / rate_per_second - time.monotonic()))
        async with gate:
            await start_job(client, settings, request(tag, i), job_id=job_id)

    await asyncio.gather(*(one(i, job_id) for i, job_id in enumerate(ids)))
    return first


async def results(client: Client, ids: Sequence[str], within: float) -> list[JobRecord]:
    """Every job's final record (the workflow result), or TimeoutError after `within` s."""

    async def one(job_id: str) -> JobRecord:
        return await job_result(client.get_workflow_handle(job_id))

    async with asyncio.timeout(within):
        return list(await asyncio.gather(*(one(j) for j in ids)))


async def close_times(client: Client, ids: Sequence[str], concurrency: int = 32) -> list[float]:
    """Server-side close time of each workflow (Unix seconds)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(job_id: str) -> float:
        async with gate:
            desc = await client.get_workflow_handle(job_id).describe()
        assert desc.close_time is not None, f"{job_id} has not closed"
        return desc.close_time.timestamp()

    return list(await asyncio.gather(*(one(j) for j in ids)))


# ---- the floor ----------------------------------------------------------------------------


async def start_floor(
    client: Client,
    task_queue: str,
    shape: FloorShape,
    ids: Sequence[str],
    *,
    signals_to_send: int | None = None,
    concurrency: int = 32,
) -> float:
    """Start floor workflows and send each its signals (as the webhook would; all of
    `shape.signals` unless told fewer); returns the first start's wall-clock time."""
    sends = shape.signals if signals_to_send is None else signals_to_send
    gate = asyncio.Semaphore(concurrency)
    first = time.time()

    async def one(job_id: str) -> None:
        async with gate:
            handle: WorkflowHandle[Any, Any] = await client.start_workflow(
                FLOOR_WORKFLOW, shape, id=job_id, task_queue=task_queue
            )
        for _ in range(sends):
            async with gate:
                await handle.signal(FloorWorkflow.hint)

    await asyncio.gather(*(one(j) for j in ids))
    return first


async def floor_results(client: Client, ids: Sequence[str], within: float) -> list[int]:
    async def one(job_id: str) -> int:
        return int(await client.get_workflow_handle(job_id).result())

    async with asyncio.timeout(within):
        return list(await asyncio.gather(*(one(j) for j in ids)))


# ---- what a real job is made of ------------------------------------------------------------


@dataclass(frozen=True)
class JobShape:
    """Counted from a real job's history: what the floor must match, plus context."""

    activities_before_wait: int
    signals: int
    activities_after_wait: int
    activity_types: dict[str, int]
    timers: int
    events: int
    local_activities: int = 0
    """Local activities (their markers): the floor runs as many, as local activities."""

    def floor(self) -> FloorShape:
        return FloorShape(
            before=self.activities_before_wait,
            signals=self.signals,
            after=self.activities_after_wait,
            local=self.local_activities,
        )


async def job_shape(client: Client, job_id: str) -> JobShape:
    """Activities scheduled before the last provider callback, callbacks, activities after."""
    history = await client.get_workflow_handle(job_id).fetch_history()
    scheduled: list[int] = []
    signals: list[int] = []
    types: dict[str, int] = {}
    timers = markers = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            markers += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(event.event_id)
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            types[name] = types.get(name, 0) + 1
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals.append(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timers += 1
    last_signal = max(signals, default=0)
    before = sum(1 for e in scheduled if e < last_signal)
    return JobShape(
        activities_before_wait=before,
        signals=len(signals),
        activities_after_wait=len(scheduled) - before,
        activity_types=types,
        timers=timers,
        events=len(history.events),
        local_activities=markers,
    )


async def activity_window(client: Client, job_id: str, activity: str) -> tuple[float, float]:
    """(started, completed) server times of the first attempt of `activity` that completed."""
    history = await client.get_workflow_handle(job_id).fetch_history()
    scheduled: dict[int, str] = {}
    started: dict[int, float] = {}
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled.get(sched) == activity:
                return started[sched], at
    raise LookupError(f"{job_id}: no completed {activity}")


async def activity_timings(
    client: Client, ids: Sequence[str], concurrency: int = 16
) -> dict[str, dict[str, float]]:
    """Per activity type over these jobs: median and p95 of queue time (scheduled -> started:
    waiting for a worker slot or poll) and run time (started -> completed), in seconds."""
    from bench.stats import percentile

    gate = asyncio.Semaphore(concurrency)
    queued: dict[str, list[float]] = {}
    ran: dict[str, list[float]] = {}

    async def one(job_id: str) -> None:
        async with gate:
            history = await client.get_workflow_handle(job_id).fetch_history()
        names: dict[int, str] = {}
        times: dict[int, float] = {}
        started: dict[int, float] = {}
        for event in history.events:
            at = event.event_time.ToDatetime().timestamp()
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                names[event.event_id] = (
                    event.activity_task_scheduled_event_attributes.activity_type.name
                )
                times[event.event_id] = at
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                sched = event.activity_task_started_event_attributes.scheduled_event_id
                started[sched] = at
                queued.setdefault(names[sched], []).append(at - times[sched])
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                sched = event.activity_task_completed_event_attributes.scheduled_event_id
                if sched in started:
                    ran.setdefault(names[sched], []).append(at - started[sched])

    await asyncio.gather(*(one(j) for j in ids))
    return {
        name: {
            "queue_p50": round(percentile(queued.get(name, []), 50), 4),
            "queue_p95": round(percentile(queued.get(name, []), 95), 4),
            "run_p50": round(percentile(ran.get(name, []), 50), 4),
            "run_p95": round(percentile(ran.get(name, []), 95), 4),
        }
        for name in queued
    }


async def critical_path(
    client: Client, job_id: str, succeeded_at: float
) -> list[tuple[str, float]]:
    """Where the time between the provider's success and the stored copy went, for one job.

    Stage one ends when the workflow learns of the success: the last signal (a callback) or,
    without one after the success, the completion of the GET that saw it. Then one stage per
    activity scheduled after that moment, up to the copy: each runs from the previous stage's
    end to its own completion (workflow task, queueing and run time together).
    """
    history = await client.get_workflow_handle(job_id).fetch_history()
    names: dict[int, str] = {}
    completed: list[tuple[int, str, float]] = []
    last_signal = None
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            completed.append((sched, names[sched], at))
        elif (
            event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and at >= succeeded_at
        ):
            last_signal = (event.event_id, at)
    copy = next((c for c in completed if c[1] == "copy_output"), None)
    if copy is None:
        return []
    if last_signal is not None:
        learned_id, learned_at, label = last_signal[0], last_signal[1], "callback signal"
    else:
        gets = [c for c in completed if c[1] == "get_task" and c[0] < copy[0]]
        if not gets:
            return []
        learned_id, learned_at, label = gets[-1][0], gets[-1][2], "poll GET"
    stages = [(f"provider success -> {label}", learned_at - succeeded_at)]
    previous = learned_at
    for sched, name, at in completed:
        if sched > learned_id and sched <= copy[0]:
            stages.append((name, at - previous))
            previous = at
    return stages


async def history_events(client: Client, query: str) -> dict[str, Any]:
    """Workflow runs matching a visibility query (continued-as-new runs included): their types
    and history events in total, read with describe (visibility lags for running ones)."""
    runs = 0
    events = 0
    types: set[str] = set()
    async for wf in client.list_workflows(query):
        desc = await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()
        runs += 1
        events += desc.history_length
        types.add(wf.workflow_type)
    return {"types": sorted(types), "runs": runs, "history_events": events}


# ---- the provider's side ---------------------------------------------------------------------


async def emulator_tasks(base_url: str) -> dict[str, dict[str, Any]]:
    """The emulator's task log by task ID (float times, per-task request counters)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        resp = await http.get("/_emulator/tasks")
        resp.raise_for_status()
        return {t["id"]: t for t in resp.json()["tasks"]}


async def emulator_stats(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        resp = await http.get("/_emulator/stats")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


async def emulator_creates(base_url: str) -> int:
    """Creates the emulator has answered so far."""
    stats = await emulator_stats(base_url)
    return int(stats.get("request_totals", {}).get("create", 0))


async def wait_for_creates(base_url: str, n: int, within: float) -> None:
    """Until the emulator has answered `n` creates in total (or TimeoutError)."""
    async with asyncio.timeout(within):
        while True:
            stats = await emulator_stats(base_url)
            creates = int(stats.get("request_totals", {}).get("create", 0))
            if creates >= n:
                return
            await asyncio.sleep(0.2)


def api_calls(task: dict[str, Any]) -> int:
    """Provider API calls that named this task: its create, GETs and DELETEs (not downloads)."""
    counts = task.get("requests") or {}
    return int(counts.get("create", 0) + counts.get("get", 0) + counts.get("delete", 0))


def file_path(uri: str) -> Path:
    """A `file://` URI as a path."""
    return Path(urlsplit(uri).path)
