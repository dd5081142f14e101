"""Everything the invariants look at, gathered once after a scenario from the sources of truth:
Temporal (each job's describe, result and history, and how many runs each job ID had), the
emulator's task log and file digests (the provider's side), the ledger (SQLite file or Postgres:
rows and unattributed tasks), and the stored objects (directory or S3 bucket: every video under
each job's folders, and the multipart uploads still open), and the capacity gate's `state`.

The invariants (`chaos.invariants`) are pure functions of this; gathering is the only I/O.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import decode_typed_search_attributes
from temporalio.service import RPCError, RPCStatusCode

from chaos.stored import Storage, StoredFile
from seedance_pipeline.adapters.ledger import open_ledger
from seedance_pipeline.clients.jobs import job_result
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.capacity import Gate
from seedance_pipeline.core.models import JobRecord, LedgerEntry, UnattributedTask
from seedance_pipeline.core.settings import Settings

__all__ = ["Evidence", "JobEvidence", "StoredFile", "gather", "job_of_task", "price_table"]

CLOSED_WITH_RECORD = (
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
)
"""A closed job's record: its result, its failure's details, or (cancelled) its query."""
PROMPT_SEPARATOR = ": "
"""Job prompts are `<job id>: <text>`, so every provider task names the job that made it."""


def job_of_task(task: dict[str, Any]) -> str | None:
    """The job ID a provider task was created for, read from the create body's prompt."""
    body = task.get("request") or {}
    for item in body.get("content") or []:
        if item.get("type") == "text":
            text = str(item.get("text", ""))
            if PROMPT_SEPARATOR in text:
                return text.split(PROMPT_SEPARATOR, 1)[0]
    return None


@dataclass
class JobEvidence:
    job_id: str
    started_at: datetime | None = None
    closed_at: datetime | None = None
    status: str = "unknown"
    record: JobRecord | None = None
    result_error: str | None = None
    states: list[str] = field(default_factory=list)
    """JobState values in history order: the one the job was started with (v3 jobs), then
    every upsert the workflow made."""
    video: StoredFile | None = None
    last_frame: StoredFile | None = None
    manifest: dict[str, Any] | None = None
    manifest_error: str | None = None


@dataclass
class Evidence:
    jobs: dict[str, JobEvidence]
    tasks: list[dict[str, Any]]
    """The emulator's task log (every task created during the scenario)."""
    digests: dict[tuple[str, str], dict[str, Any]]
    """(task ID, file name) -> the emulator's size and sha256 of that output."""
    ledger: list[LedgerEntry]
    """Every row in the ledger file (all scenarios so far)."""
    known_jobs: set[str]
    """Every job started in this run so far (a ledger row must belong to one)."""
    deadline_seconds: float
    """A job's own deadline per provider task it waited for (queue + execution deadline)."""
    slack_seconds: float
    """Allowance on top for creates, reconciles, copies and the planned outages."""
    unattributed: list[UnattributedTask] = field(default_factory=list)
    """Billed tasks nobody could claim, as the ledger keeps them."""
    stored_videos: dict[str, list[StoredFile]] = field(default_factory=dict)
    """Job ID -> every video object under its folders (every run, every followed task)."""
    open_uploads: list[str] = field(default_factory=list)
    """Multipart uploads left open in the bucket (S3 deployments)."""
    prices: dict[str, tuple[float, str]] = field(default_factory=dict)
    """Model ID -> (price per 1M tokens, currency): what the provider bills for its tokens."""
    runs: dict[str, int] = field(default_factory=dict)
    """Job ID -> how many runs it had (a rerun starts another under the same ID)."""
    gate: Gate | None = None
    """The scenario's capacity gate as its `state` query answered after the jobs closed
    (None: the scenario ran without one)."""

    def tasks_by_job(self) -> dict[str | None, list[dict[str, Any]]]:
        out: dict[str | None, list[dict[str, Any]]] = {}
        for task in self.tasks:
            out.setdefault(job_of_task(task), []).append(task)
        return out


def price_table(settings: Settings | None = None) -> dict[str, tuple[float, str]]:
    """Model ID -> (standard price per 1M tokens, currency), from the shipped price table (the
    chaos jobs have no video input and run on the default tier)."""
    settings = settings or load_settings()
    table: dict[str, tuple[float, str]] = {}
    for spec in settings.models.values():
        for route, model_id in spec.ids.items():
            price = spec.prices.get(route)
            if price is not None and route in settings.routes:
                table[model_id] = (price.standard, settings.routes[route].currency)
    return table


def _manifest(ev: JobEvidence, storage: Storage, uri: str | None) -> None:
    if not uri:
        return
    try:
        ev.manifest = json.loads(_read_text(storage, uri))
    except (OSError, ValueError) as exc:
        ev.manifest_error = f"{type(exc).__name__}: {exc}"


def _read_text(storage: Storage, uri: str) -> str:
    if uri.startswith("s3://"):
        key = uri.removeprefix(f"s3://{storage.bucket}/")
        body: bytes = storage.s3.get_object(Bucket=storage.bucket, Key=key)["Body"].read()
        return body.decode()
    return Path(urlsplit(uri).path).read_text()


async def _job(client: Client, storage: Storage, job_id: str) -> JobEvidence:
    ev = JobEvidence(job_id=job_id)
    handle = client.get_workflow_handle(job_id, result_type=JobRecord)
    try:
        desc = await handle.describe()
    except RPCError as exc:
        ev.result_error = f"describe failed: {exc}"
        return ev
    ev.started_at, ev.closed_at = desc.start_time, desc.close_time
    ev.status = desc.status.name if desc.status else "unknown"
    if desc.status in CLOSED_WITH_RECORD:
        try:
            ev.record = await job_result(handle)
        except Exception as exc:  # a failed result is evidence, not a harness crash
            ev.result_error = f"{type(exc).__name__}: {exc}"
    history = await handle.fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes.search_attributes
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attrs = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        else:
            continue
        state = decode_typed_search_attributes(attrs).get(sa.JOB_STATE)
        if state is not None:
            ev.states.append(state)
    rec = ev.record
    if rec is not None:
        ev.video, ev.last_frame = await asyncio.gather(
            asyncio.to_thread(storage.read, rec.video_uri),
            asyncio.to_thread(storage.read, rec.last_frame_uri),
        )
        await asyncio.to_thread(_manifest, ev, storage, rec.manifest_uri)
    return ev


async def _digests(
    emulator_url: str, wanted: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=emulator_url, timeout=60) as http:

        async def one(task_id: str, name: str) -> None:
            async with gate:
                resp = await http.get(f"/_emulator/tasks/{task_id}/files/{name}")
            if resp.status_code == 200:
                out[(task_id, name)] = resp.json()

        await asyncio.gather(*(one(t, n) for t, n in wanted))
    return out


async def _runs(client: Client, task_queue: str) -> dict[str, int]:
    """How many runs each job ID had on this scenario's queue (closed runs included)."""
    query = f"TaskQueue = '{task_queue}' AND WorkflowType = 'GenerationWorkflow'"
    counts: Counter[str] = Counter()
    async for execution in client.list_workflows(query):
        counts[execution.id] += 1
    return dict(counts)


def _ledger(url: str) -> tuple[list[LedgerEntry], list[UnattributedTask]]:
    ledger = open_ledger(url)
    try:
        return ledger.entries(), ledger.unattributed()
    finally:
        ledger.close()


async def gather(
    client: Client,
    emulator_url: str,
    ledger_url: str,
    storage: Storage,
    job_ids: Sequence[str],
    *,
    known_jobs: set[str],
    deadline_seconds: float,
    slack_seconds: float,
    task_queue: str = "",
    gate_id: str | None = None,
) -> Evidence:
    gate = asyncio.Semaphore(16)

    async def one(job_id: str) -> JobEvidence:
        async with gate:
            return await _job(client, storage, job_id)

    jobs = {ev.job_id: ev for ev in await asyncio.gather(*(one(j) for j in job_ids))}
    async with httpx.AsyncClient(base_url=emulator_url, timeout=60) as http:
        resp = await http.get("/_emulator/tasks")
        resp.raise_for_status()
        tasks: list[dict[str, Any]] = resp.json()["tasks"]
    wanted: list[tuple[str, str]] = []
    for task in tasks:
        if task.get("status") == "succeeded":
            wanted.append((task["id"], "video.mp4"))
            if (task.get("request") or {}).get("return_last_frame"):
                wanted.append((task["id"], "last_frame.png"))
    digests = await _digests(emulator_url, wanted)
    rows, unattributed = await asyncio.to_thread(_ledger, ledger_url)
    return Evidence(
        gate=await query_gate(client, gate_id) if gate_id else None,
        jobs=jobs,
        tasks=tasks,
        digests=digests,
        ledger=rows,
        known_jobs=set(known_jobs),
        deadline_seconds=deadline_seconds,
        slack_seconds=slack_seconds,
        unattributed=unattributed,
        stored_videos=await asyncio.to_thread(storage.videos_by_job, set(job_ids)),
        open_uploads=await asyncio.to_thread(storage.open_uploads),
        prices=price_table(),
        runs=await _runs(client, task_queue) if task_queue else {},
    )


async def query_gate(client: Client, gate_id: str) -> Gate | None:
    """The gate's state, or None when it never started (no job of the scenario asked)."""
    try:
        gate: Gate = await client.get_workflow_handle(gate_id).query("state", result_type=Gate)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return gate


def live_tasks(tasks: Sequence[dict[str, Any]]) -> dict[str, str | None]:
    """Task ID -> its job, for every task the provider still holds (queued or running)."""
    return {t["id"]: job_of_task(t) for t in tasks if t.get("status") in LIVE_STATUSES}


LIVE_STATUSES = frozenset({"queued", "running"})
