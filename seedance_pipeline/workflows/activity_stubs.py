"""Every activity the workflows call, declared once by name and signature.

Workflows call these stubs (`workflow.execute_activity(stubs.create_task, ...)`), so a call is
type-checked against its input and result models while this module imports no I/O library:
the implementations (`seedance_pipeline.activities`) register under the same names, and
`tests/workflows/test_activity_stubs.py` checks the worker registers exactly these. The bodies
never run in a worker; tests may register them with other bodies as mocked activities.
"""

from __future__ import annotations

from temporalio import activity

from seedance_pipeline.core.budget import BudgetCheckInput, BudgetRelease, BudgetVerdict
from seedance_pipeline.core.capacity import HolderCheckResult, HolderChecks
from seedance_pipeline.core.checks import WorkerChecksInput, WorkerReport
from seedance_pipeline.core.follow import FollowerStarted, FollowTaskInput
from seedance_pipeline.core.models import (
    AppWebhookInput,
    AppWebhookResult,
    CheckedReference,
    CheckReferencesInput,
    ChooseModelInput,
    ClaimTaskInput,
    CopyOutputInput,
    CreateTaskInput,
    CreateTaskResult,
    FindClaimsInput,
    FindTasksInput,
    LedgerEntry,
    ManifestInput,
    ModelChoice,
    ProviderTask,
    ReportHealthInput,
    ResolvedModel,
    ResolveInput,
    StoredObject,
    TaskClaim,
    TaskOwnersInput,
    TaskRef,
    UnattributedTask,
)
from seedance_pipeline.core.reconcile import (
    InvoiceReconcile,
    InvoiceReconcileInput,
    ProviderReconcileInput,
    RouteReconcile,
)


class StubCalled(RuntimeError):
    """A stub ran: the worker registered the stub instead of the implementation."""


def _stub(name: str) -> StubCalled:
    return StubCalled(f"activity stub {name!r} ran: register the implementation in the worker")


@activity.defn(name="resolve_model")
async def resolve_model(data: ResolveInput) -> ResolvedModel:
    """Alias -> route, model ID, limits, price, estimate, submit queue (pinned in history)."""
    raise _stub("resolve_model")


@activity.defn(name="check_references")
async def check_references(data: CheckReferencesInput) -> list[CheckedReference]:
    raise _stub("check_references")


@activity.defn(name="choose_model")
async def choose_model(data: ChooseModelInput) -> ModelChoice:
    raise _stub("choose_model")


@activity.defn(name="report_health")
async def report_health(data: ReportHealthInput) -> None:
    raise _stub("report_health")


@activity.defn(name="check_budget")
async def check_budget(data: BudgetCheckInput) -> BudgetVerdict:
    raise _stub("check_budget")


@activity.defn(name="release_budget")
async def release_budget(data: BudgetRelease) -> None:
    raise _stub("release_budget")


@activity.defn(name="create_task")
async def create_task(data: CreateTaskInput) -> CreateTaskResult:
    """The one paid call: run once per create on the model's submit queue."""
    raise _stub("create_task")


@activity.defn(name="find_tasks")
async def find_tasks(data: FindTasksInput) -> list[ProviderTask]:
    raise _stub("find_tasks")


@activity.defn(name="task_owners")
async def task_owners(data: TaskOwnersInput) -> dict[str, str]:
    raise _stub("task_owners")


@activity.defn(name="get_task")
async def get_task(ref: TaskRef) -> ProviderTask:
    raise _stub("get_task")


@activity.defn(name="cancel_task")
async def cancel_task(ref: TaskRef) -> bool:
    raise _stub("cancel_task")


@activity.defn(name="copy_output")
async def copy_output(data: CopyOutputInput) -> StoredObject:
    raise _stub("copy_output")


@activity.defn(name="write_manifest")
async def write_manifest(data: ManifestInput) -> StoredObject:
    raise _stub("write_manifest")


@activity.defn(name="record_cost")
async def record_cost(entry: LedgerEntry) -> None:
    raise _stub("record_cost")


@activity.defn(name="deliver_app_webhook")
async def deliver_app_webhook(data: AppWebhookInput) -> AppWebhookResult:
    """Post the signed completion webhook to the application (Standard Webhooks)."""
    raise _stub("deliver_app_webhook")


@activity.defn(name="check_capacity_holders")
async def check_capacity_holders(data: HolderChecks) -> HolderCheckResult:
    """For the gate: which silent slot holders are gone, with their tasks ended."""
    raise _stub("check_capacity_holders")


@activity.defn(name="worker_checks")
async def worker_checks(data: WorkerChecksInput) -> WorkerReport:
    """The worker's own doctor checks (its settings, keys, storage, ledger, queues)."""
    raise _stub("worker_checks")


@activity.defn(name="reconcile_provider")
async def reconcile_provider(data: ProviderReconcileInput) -> list[RouteReconcile]:
    """Ledger rows against the provider's task list, per route."""
    raise _stub("reconcile_provider")


@activity.defn(name="reconcile_invoice")
async def reconcile_invoice(data: InvoiceReconcileInput) -> InvoiceReconcile:
    """Billed ledger totals against an invoice's lines."""
    raise _stub("reconcile_invoice")


@activity.defn(name="claim_task")
async def claim_task(data: ClaimTaskInput) -> TaskClaim:
    """Claim a provider task for one create: the first claim wins for good (`won`)."""
    raise _stub("claim_task")


@activity.defn(name="find_claims")
async def find_claims(data: FindClaimsInput) -> dict[str, TaskClaim]:
    raise _stub("find_claims")


@activity.defn(name="record_unattributed")
async def record_unattributed(task: UnattributedTask) -> bool:
    raise _stub("record_unattributed")


@activity.defn(name="start_task_follower")
async def start_task_follower(data: FollowTaskInput) -> FollowerStarted:
    """Hand a provider task to its follower (one per task ID; a second start finds the first)."""
    raise _stub("start_task_follower")


ALL = (
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
    deliver_app_webhook,
    worker_checks,
    reconcile_provider,
    reconcile_invoice,
    claim_task,
    find_claims,
    record_unattributed,
    start_task_follower,
)
"""Every stub; the worker must register exactly these names."""
