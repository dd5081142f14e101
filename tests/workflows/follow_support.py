"""The fast layer for TaskFollowerWorkflow: the real follower against scripted activities.

`FollowScript` says what each GET, copy and manifest write answers; `run_follower` starts one
follower on a fresh queue of the session's dev server and returns its result and the rows the
scripted ledger received (the follower calls only get_task, copy_output, write_manifest and
record_cost).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.follow import (
    FollowerView,
    FollowProgress,
    FollowTaskInput,
    FollowTaskResult,
)
from seedance_pipeline.core.models import (
    CopyOutputInput,
    GenerationRequest,
    LedgerEntry,
    ManifestInput,
    ProviderContent,
    ProviderTask,
    ProviderUsage,
    StoredObject,
    TaskRef,
    UnattributedTask,
)
from seedance_pipeline.worker import WORKFLOW_RUNNER
from seedance_pipeline.workflows.follow_task import TaskFollowerWorkflow

TOKENS = 49_766
UNIT_PRICE = 3.5


def task(task_id: str, status: str, *, url: str = "", **extra: Any) -> ProviderTask:
    now = int(datetime.now(UTC).timestamp())
    fields: dict[str, Any] = {"id": task_id, "status": status, "created_at": now, "updated_at": now}
    if status == "succeeded":
        video = url or f"https://out.example/{task_id}.mp4?expires={now + 86_400}"
        fields["content"] = ProviderContent(
            video_url=video, last_frame_url=video.replace(".mp4", ".png")
        )
        fields["usage"] = ProviderUsage(completion_tokens=TOKENS, total_tokens=TOKENS)
    fields.update(extra)
    return ProviderTask(**fields)


def error(kind: str, *, retry_after: float | None = None) -> ApplicationError:
    delay = timedelta(seconds=retry_after) if retry_after is not None else None
    return ApplicationError(
        f"{kind} from the script",
        {"code": kind, "message": f"{kind} from the script"},
        type=kind,
        non_retryable=kind in (et.PROVIDER_TASK_NOT_FOUND, et.OUTPUT_URL_EXPIRED),
        next_retry_delay=delay,
    )


@dataclass
class FollowScript:
    gets: list[ProviderTask | Exception] = field(default_factory=list)
    """Successive GET answers (each Temporal attempt takes one); the last repeats."""
    copies: list[Exception | None] = field(default_factory=list)
    """Successive copy answers (None: stored); the last repeats. Empty: every copy works."""
    calls: Counter[str] = field(default_factory=Counter)
    ledger: list[LedgerEntry] = field(default_factory=list)
    copied: list[CopyOutputInput] = field(default_factory=list)
    manifests: list[ManifestInput] = field(default_factory=list)
    unattributed: list[UnattributedTask] = field(default_factory=list)
    claimed_meanwhile: bool = False
    """`record_unattributed` answers False: a create claimed the task first."""

    def next(self, answers: list[Any]) -> Any:
        return answers.pop(0) if len(answers) > 1 else answers[0]


def follow_activities(script: FollowScript) -> list[Callable[..., Any]]:
    @activity.defn(name="get_task")
    async def get_task(ref: TaskRef) -> ProviderTask:
        script.calls["get_task"] += 1
        answer = script.next(script.gets)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @activity.defn(name="copy_output")
    async def copy_output(data: CopyOutputInput) -> StoredObject:
        script.calls["copy_output"] += 1
        answer = script.next(script.copies) if script.copies else None
        if answer is not None:
            raise answer
        script.copied.append(data)
        where = f"{data.job_id}/{data.run}/followed-{data.followed_submit_no}/{data.kind}"
        return StoredObject(
            uri=f"file:///out/{where}", size=10, sha256="a" * 64, content_type="video/mp4"
        )

    @activity.defn(name="write_manifest")
    async def write_manifest(data: ManifestInput) -> StoredObject:
        script.calls["write_manifest"] += 1
        script.manifests.append(data)
        return StoredObject(
            uri=f"file:///out/{data.job_id}/manifest.json",
            size=1,
            sha256="b" * 64,
            content_type="application/json",
        )

    @activity.defn(name="record_cost")
    async def record_cost(entry: LedgerEntry) -> None:
        script.calls["record_cost"] += 1
        script.ledger.append(entry)

    @activity.defn(name="record_unattributed")
    async def record_unattributed(task: UnattributedTask) -> bool:
        script.calls["record_unattributed"] += 1
        if script.claimed_meanwhile:
            return False
        script.unattributed.append(task)
        return True

    return [get_task, copy_output, write_manifest, record_cost, record_unattributed]


def follow_input(**overrides: Any) -> FollowTaskInput:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "job_id": f"job-{uuid.uuid4().hex[:10]}",
        "run": "run-1",
        "submit_no": 1,
        "route": "byteplus",
        "task_id": f"cgt-{uuid.uuid4().hex[:12]}",
        "model_alias": "mini",
        "model_id": "dreamina-seedance-2-0-mini-260615",
        "unit_price": UNIT_PRICE,
        "currency": "USD",
        "request": GenerationRequest(prompt="a red fox", duration=4, return_last_frame=True),
        "requested_at": now - timedelta(minutes=1),
        "accepted_at": now - timedelta(seconds=50),
        "reason": "cancelled while the task was running",
        "poll_first_seconds": 1.0,
        "poll_max_seconds": 1.0,
        "progress": FollowProgress(),
    }
    base.update(overrides)
    return FollowTaskInput(**base)


@dataclass
class Followed:
    result: FollowTaskResult
    view: FollowerView
    """The `status` query's answer after the end (asked while the worker still runs)."""
    handle: WorkflowHandle[Any, Any]


async def start_follower(client: Client, queue: str, inp: Any, workflow_id: str) -> Any:
    return await client.start_workflow(
        "TaskFollowerWorkflow", inp, id=workflow_id, task_queue=queue, result_type=FollowTaskResult
    )


async def run_follower(client: Client, script: FollowScript, inp: FollowTaskInput) -> Followed:
    queue = f"follow-{uuid.uuid4().hex[:10]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TaskFollowerWorkflow],
        activities=follow_activities(script),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await start_follower(client, queue, inp, f"follow-{uuid.uuid4().hex[:12]}")
        result = await handle.result()
        view = await handle.query("status", result_type=FollowerView)
        return Followed(result, view, handle)
