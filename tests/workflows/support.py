"""The fast workflow layer: the real GenerationWorkflow against scripted activities.

`Script` says what the provider and storage answer (each create, each GET of a task, each
copy); `scripted_activities(script)` registers mocked activities under the stubs' names (as
samples-python's `hello_activity_test` does), so each branch of the job runs in a fraction of a
second on the session's dev server, with no emulator, storage or ledger. `run_job` starts a job
on a fresh queue and returns its record and its workflow's final status.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from seedance_pipeline.activities.capacity import GateAsker, GateReleaser
from seedance_pipeline.clients.jobs import job_result
from seedance_pipeline.core.budget import BudgetCheckInput, BudgetRelease, BudgetVerdict
from seedance_pipeline.core.capacity import (
    CapacityRelease,
    GateConfig,
    GateRef,
    HolderCheckResult,
    HolderChecks,
    ModelLimits,
)
from seedance_pipeline.core.follow import FollowerStarted, FollowTaskInput, follower_id
from seedance_pipeline.core.models import (
    CheckedReference,
    CheckReferencesInput,
    ChooseModelInput,
    ClaimTaskInput,
    CopyOutputInput,
    CreateTaskInput,
    CreateTaskResult,
    FindClaimsInput,
    FindTasksInput,
    GenerationInput,
    GenerationRequest,
    JobRecord,
    LedgerEntry,
    ManifestInput,
    ModelChoice,
    ProviderContent,
    ProviderError,
    ProviderTask,
    ProviderUsage,
    ReportHealthInput,
    ResolvedModel,
    ResolveInput,
    StoredObject,
    TaskClaim,
    TaskOwnersInput,
    TaskRef,
    UnattributedTask,
)
from seedance_pipeline.worker import WORKFLOW_RUNNER
from seedance_pipeline.workflows.capacity_gate import CapacityGateWorkflow
from seedance_pipeline.workflows.generation import GenerationWorkflow

TOKENS = 48_600


def model(alias: str = "mini", **overrides: Any) -> ResolvedModel:
    """A resolved model whose polls, backoffs and grace periods take no timer.

    The server fires timers with about one second of resolution, so a 50 ms poll costs a
    second; zero-length waits resolve in the same workflow task. Tests of deadlines set their
    own (short) deadlines and a real poll interval."""
    fallback = {"mini": "fast", "fast": "pro", "pro": None}[alias]
    base: dict[str, Any] = {
        "alias": alias,
        "route": "byteplus",
        "model_id": f"dreamina-seedance-2-0-{alias}-260615",
        "currency": "USD",
        "price_per_million": 3.5,
        "price_per_million_video_input": 2.1,
        "flex_factor": 0.5,
        "pixel_table": "v15",
        "expected_latency_seconds": 0.1,
        "queue_deadline_seconds": 30,
        "execution_deadline_seconds": 30,
        "fallback": fallback,
        "poll_first_seconds": 0,
        "poll_min_seconds": 0,
        "poll_max_seconds": 0,
        "poll_backoff": 1.5,
        "resolution": "480p",
        "ratio": "16:9",
        "create_backoff_seconds": 0,
        "reconcile_grace_seconds": 0,
        "breaker": False,
        "submit_queue": "",
        "unit_price": 3.5,
        "estimated_tokens": TOKENS,
        "estimated_cost": 0.17,
    }
    base.update(overrides)
    return ResolvedModel(**base)


def gated(
    queue: str,
    *,
    concurrency: int = 1,
    headroom: int = 0,
    rpm: int = 600,
    max_wait: float = 60,
    **config: Any,
) -> dict[str, ResolvedModel]:
    """Models behind a capacity gate of their own (a fresh gate ID) on the scripted worker's
    queue: the real CapacityGateWorkflow, with small limits."""
    ref = GateRef(
        gate_id=f"capacity:byteplus@{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        route="byteplus",
        limits=ModelLimits(concurrency=concurrency, rpm=rpm, expected_latency_seconds=10),
        config=GateConfig(headroom_per_model=headroom, **config),
        max_wait_seconds=max_wait,
    )
    return {a: model(a, capacity=ref) for a in ("mini", "fast", "pro")}


def task(task_id: str, status: str, **extra: Any) -> ProviderTask:
    now = int(datetime.now(UTC).timestamp())
    fields: dict[str, Any] = {"id": task_id, "status": status, "created_at": now, "updated_at": now}
    if status == "succeeded":
        fields["content"] = ProviderContent(video_url=f"https://out.example/{task_id}.mp4")
        fields["usage"] = ProviderUsage(completion_tokens=TOKENS, total_tokens=TOKENS)
    fields.update(extra)
    return ProviderTask(**fields)


def failed(task_id: str, code: str, message: str = "from the script") -> ProviderTask:
    return task(task_id, "failed", error=ProviderError(code=code, message=message))


def app_error(
    kind: str, code: str = "", outcome: str = "failed_infra", **kw: Any
) -> ApplicationError:
    """An activity failure as the real activities raise it (type + verbatim details)."""
    det = {"code": code or kind, "message": f"{kind} from the script", "outcome": outcome}
    return ApplicationError(f"{kind} from the script", det, type=kind, **kw)


def verdict(*, allowed: bool, message: str = "within budget") -> BudgetVerdict:
    return BudgetVerdict(
        allowed=allowed, message=message, route="byteplus", currency="USD", estimate=0.17
    )


@dataclass
class Script:
    """What each activity answers. Lists are consumed in order; the last entry repeats."""

    models: dict[str, ResolvedModel] = field(
        default_factory=lambda: {a: model(a) for a in ("mini", "fast", "pro")}
    )
    resolve_error: ApplicationError | None = None
    creates: list[Any] = field(default_factory=list)
    """Per create: a task ID, or an exception to raise. Empty: task IDs t1, t2, ..."""
    gets: dict[str, list[Any]] = field(default_factory=dict)
    """Per task ID, successive GET answers. Missing: running, then succeeded."""
    listed: list[ProviderTask] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)
    copies: list[Any] = field(default_factory=list)
    """Per copy: None (ok) or an exception."""
    references_error: ApplicationError | None = None
    budget: BudgetVerdict = field(default_factory=lambda: verdict(allowed=True))
    breaker_alias: str | None = None
    choose_error: ApplicationError | None = None
    """Every breaker ask fails so (a breaker that cannot be reached)."""
    calls: Counter[str] = field(default_factory=Counter)
    ledger: list[LedgerEntry] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    cancel_refused: bool = False
    """The provider refuses every DELETE (the task has left the queue)."""
    reports: list[ReportHealthInput] = field(default_factory=list)
    claims: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    """task ID -> (job, run, submit) of the create that claimed it."""
    followed: list[FollowTaskInput] = field(default_factory=list)
    follow_held: asyncio.Event | None = None
    """Set: starting a follower waits for it (the job's outcome is decided, its run not over)."""

    def next(self, answers: list[Any], default: Any) -> Any:
        if not answers:
            return default
        return answers.pop(0) if len(answers) > 1 else answers[0]


def scripted_activities(script: Script) -> list[Callable[..., Any]]:
    """Mocked activities under the stubs' names; each counts its calls in `script.calls`."""

    def answer(value: Any) -> Any:
        if isinstance(value, BaseException):
            raise value
        return value

    @activity.defn(name="resolve_model")
    async def resolve_model(data: ResolveInput) -> ResolvedModel:
        script.calls["resolve_model"] += 1
        if script.resolve_error is not None:
            raise script.resolve_error
        alias = data.alias or data.request.model or "mini"
        queue = activity.info().task_queue
        return script.models[alias].model_copy(
            update={"submit_queue": script.models[alias].submit_queue or queue}
        )

    @activity.defn(name="check_references")
    async def check_references(data: CheckReferencesInput) -> list[CheckedReference]:
        script.calls["check_references"] += 1
        if script.references_error is not None:
            raise script.references_error
        return [CheckedReference(index=i, url=r.url) for i, r in enumerate(data.request.references)]

    @activity.defn(name="choose_model")
    async def choose_model(data: ChooseModelInput) -> ModelChoice:
        script.calls["choose_model"] += 1
        if script.choose_error is not None:
            raise script.choose_error
        return ModelChoice(alias=script.breaker_alias or data.alias, decided_by="script")

    @activity.defn(name="report_health")
    async def report_health(data: ReportHealthInput) -> None:
        script.calls["report_health"] += 1
        script.reports.append(data)

    @activity.defn(name="check_budget")
    async def check_budget(data: BudgetCheckInput) -> BudgetVerdict:
        script.calls["check_budget"] += 1
        return script.budget

    @activity.defn(name="release_budget")
    async def release_budget(data: BudgetRelease) -> None:
        script.calls["release_budget"] += 1

    askers: list[GateAsker] = []

    @activity.defn(name="create_task")
    async def create_task(data: CreateTaskInput) -> CreateTaskResult:
        """The ask goes to the real gate (through the worker's own client), as the real create
        sends it; only the provider's answer is scripted."""
        granted_at = None
        if data.ask is not None:
            if not askers:
                askers.append(GateAsker(activity.client()))
            script.calls["ask"] += 1
            reply = await askers[0].ask(data.ask)
            if reply.granted is None:
                return CreateTaskResult(waiting=reply.waiting)
            granted_at = reply.granted.at
        script.calls["create_task"] += 1
        value = script.next(script.creates, f"t{script.calls['create_task']}")
        return CreateTaskResult(task_id=answer(value), granted_at=granted_at)

    @activity.defn(name="find_tasks")
    async def find_tasks(data: FindTasksInput) -> list[ProviderTask]:
        script.calls["find_tasks"] += 1
        return list(script.listed)

    @activity.defn(name="task_owners")
    async def task_owners(data: TaskOwnersInput) -> dict[str, str]:
        script.calls["task_owners"] += 1
        return {t: j for t, j in script.owners.items() if t in data.task_ids}

    releasers: list[GateReleaser] = []

    @activity.defn(name="get_task")
    async def get_task(ref: TaskRef) -> ProviderTask:
        """A succeeded task's slot goes back to the real gate, as the real read gives it."""
        script.calls["get_task"] += 1
        answers = script.gets.setdefault(
            ref.task_id, [task(ref.task_id, "running"), task(ref.task_id, "succeeded")]
        )
        found = answer(script.next(answers, task(ref.task_id, "succeeded")))
        if ref.release_to is not None and found.status == "succeeded":
            if not releasers:
                releasers.append(GateReleaser(activity.client()))
            script.calls["release_by_read"] += 1
            message = CapacityRelease(job_id=ref.job_id, task_id=ref.task_id)
            await releasers[0].release(ref.release_to, message)
        return found

    @activity.defn(name="cancel_task")
    async def cancel_task(ref: TaskRef) -> bool:
        script.calls["cancel_task"] += 1
        script.cancelled.append(ref.task_id)
        return not script.cancel_refused

    @activity.defn(name="copy_output")
    async def copy_output(data: CopyOutputInput) -> StoredObject:
        script.calls["copy_output"] += 1
        answer(script.next(script.copies, None))
        return StoredObject(
            uri=f"file:///out/{data.job_id}/{data.kind}",
            size=1,
            sha256="0" * 64,
            content_type="video/mp4",
        )

    @activity.defn(name="write_manifest")
    async def write_manifest(data: ManifestInput) -> StoredObject:
        script.calls["write_manifest"] += 1
        return StoredObject(
            uri=f"file:///out/{data.job_id}/manifest.json",
            size=1,
            sha256="0" * 64,
            content_type="application/json",
        )

    @activity.defn(name="record_cost")
    async def record_cost(entry: LedgerEntry) -> None:
        script.calls["record_cost"] += 1
        script.ledger.append(entry)

    @activity.defn(name="claim_task")
    async def claim_task(data: ClaimTaskInput) -> TaskClaim:
        """First claim wins; `script.claims` holds who claimed what."""
        script.calls["claim_task"] += 1
        owner = script.claims.setdefault(data.task_id, (data.job_id, data.run, data.submit_no))
        return TaskClaim(
            task_id=data.task_id,
            job_id=owner[0],
            run=owner[1],
            submit_no=owner[2],
            route=data.route,
            claimed_at=datetime.now(UTC),
            won=owner == (data.job_id, data.run, data.submit_no),
        )

    @activity.defn(name="find_claims")
    async def find_claims(data: FindClaimsInput) -> dict[str, TaskClaim]:
        script.calls["find_claims"] += 1
        now = datetime.now(UTC)
        return {
            t: TaskClaim(
                task_id=t, job_id=o[0], run=o[1], submit_no=o[2], route="byteplus", claimed_at=now
            )
            for t, o in script.claims.items()
            if t in data.task_ids
        }

    @activity.defn(name="record_unattributed")
    async def record_unattributed(task: UnattributedTask) -> bool:
        script.calls["record_unattributed"] += 1
        return True

    @activity.defn(name="start_task_follower")
    async def start_task_follower(data: FollowTaskInput) -> FollowerStarted:
        """Recorded, not run: the follower has tests of its own (test_follow_task.py)."""
        script.calls["start_task_follower"] += 1
        if script.follow_held is not None:
            await script.follow_held.wait()
        script.followed.append(data)
        workflow_id = follower_id(data.route, data.task_id)
        return FollowerStarted(workflow_id=workflow_id, run_id=None, existed=False)

    @activity.defn(name="check_capacity_holders")
    async def check_capacity_holders(data: HolderChecks) -> HolderCheckResult:
        """Alive while the job runs; a gone job's task counts as ended (no provider here)."""
        script.calls["check_capacity_holders"] += 1
        result = HolderCheckResult()
        for holder in data.holders:
            desc = await activity.client().get_workflow_handle(holder.job_id).describe()
            alive = desc.status == WorkflowExecutionStatus.RUNNING and not holder.orphan
            (result.alive if alive else result.released).append(holder.job_id)
        return result

    return [
        resolve_model,
        check_references,
        choose_model,
        report_health,
        check_budget,
        release_budget,
        create_task,
        find_tasks,
        task_owners,
        get_task,
        cancel_task,
        copy_output,
        write_manifest,
        record_cost,
        check_capacity_holders,
        claim_task,
        find_claims,
        record_unattributed,
        start_task_follower,
    ]


@dataclass
class Ran:
    record: JobRecord
    status: WorkflowExecutionStatus
    handle: WorkflowHandle[Any, Any]


@asynccontextmanager
async def scripted_worker(
    client: Client, script: Script, queue: str | None = None
) -> AsyncIterator[str]:
    """A worker for the job (and the capacity gate) with scripted activities on `queue`
    (default: a fresh one)."""
    queue = queue or new_queue()
    async with Worker(
        client,
        task_queue=queue,
        workflows=[GenerationWorkflow, CapacityGateWorkflow],
        activities=scripted_activities(script),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        yield queue


def new_queue() -> str:
    return f"wf-{uuid.uuid4().hex[:10]}"


def job_input(**request: Any) -> GenerationInput:
    fields: dict[str, Any] = {"prompt": f"scripted {uuid.uuid4().hex[:8]}", "duration": 4}
    fields.update(request)
    return GenerationInput(
        job_id=f"wf-{uuid.uuid4().hex[:12]}", request=GenerationRequest(**fields)
    )


async def start(client: Client, queue: str, inp: GenerationInput) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(GenerationWorkflow.run, inp, id=inp.job_id, task_queue=queue)


async def finish(handle: WorkflowHandle[Any, Any]) -> Ran:
    record = await job_result(handle)
    status = (await handle.describe()).status
    assert status is not None
    return Ran(record, status, handle)


async def run_job(client: Client, script: Script, **request: Any) -> Ran:
    async with scripted_worker(client, script) as queue:
        return await finish(await start(client, queue, job_input(**request)))
