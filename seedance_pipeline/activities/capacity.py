"""The capacity gate's I/O: the worker's asks (sent by the create before it calls the provider;
the first ask of an account starts its gate), the releases of the reads that find their tasks
succeeded, and checking the holders a gate has not heard from (is the job alive? does its task
still run at the provider?).

Worker code, not workflow code: a workflow cannot send an update, update-with-start and
describing another workflow are client calls, and reading a task needs the provider key, which
only the worker holds.
"""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.activities.group_commit import GroupCommit
from seedance_pipeline.adapters.provider_client import (
    ProviderClient,
    ProviderError,
    ProviderHTTPError,
)
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.capacity import (
    CapacityAnswer,
    CapacityAnswers,
    CapacityAsks,
    CapacityRelease,
    CapacityReleases,
    Gate,
    GateAsk,
    HolderCheck,
    HolderCheckResult,
    HolderChecks,
)
from seedance_pipeline.core.search_attributes import PROVIDER_TASK_ID
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.capacity_gate import CapacityGateWorkflow

log = structlog.get_logger(__name__)


ASK_LINGER_SECONDS = 0.005
"""How long a worker gathers asks for a gate before sending them: enough to share an update in
a burst, nothing next to a create's own latency."""
MAX_ASKS_PER_UPDATE = 500
ASK_RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
"""A failed ask is sent again (a gate may be between runs at its continue-as-new); past these
the create fails `CapacityAskFailed` and the job asks again later."""


class GateAsker:
    """A worker's asks to its accounts' gates, by group commit: one update in flight per gate
    per worker, whatever the burst (Temporal refuses an entity's eleventh update in flight)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._asks: GroupCommit[GateAsk, CapacityAnswers] = GroupCommit(
            self._send, linger=ASK_LINGER_SECONDS, max_batch=MAX_ASKS_PER_UPDATE
        )

    async def ask(self, data: GateAsk) -> CapacityAnswer:
        """The gate's answer to one job's ask; raises `CapacityAskFailed` if it cannot be had."""
        for delay in ASK_RETRY_DELAYS:
            try:
                return await self._answer(data)
            except Exception as err:  # the gate unreachable or between runs: ask again
                log.warning("capacity.ask_failed", gate=data.ref.gate_id, error=str(err))
                await asyncio.sleep(delay)
        try:
            return await self._answer(data)
        except Exception as err:
            raise ApplicationError(
                f"capacity gate {data.ref.gate_id} did not answer: {err}; the create was not "
                "sent, and the job asks again",
                type=et.CAPACITY_ASK_FAILED,
                non_retryable=True,
            ) from None

    async def _answer(self, data: GateAsk) -> CapacityAnswer:
        answers = await self._asks.add(data.ref.gate_id, data)
        return answers.answers.get(data.request.waiter.job_id) or CapacityAnswer()

    async def _send(self, gate_id: str, asks: list[GateAsk]) -> CapacityAnswers:
        ref = asks[0].ref
        gate = Gate(
            route=ref.route, config=ref.config, queued_learned=float(ref.config.queued_per_account)
        )
        start = WithStartWorkflowOperation(
            CapacityGateWorkflow.run,
            gate,
            id=gate_id,
            task_queue=ref.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        return await self._client.execute_update_with_start_workflow(
            CapacityGateWorkflow.ask,
            CapacityAsks(asks=[a.request for a in asks]),
            start_workflow_operation=start,
        )


RELEASE_LINGER_SECONDS = 0.005
MAX_RELEASES_PER_SIGNAL = 500


class GateReleaser:
    """A worker's releases to its accounts' gates, by group commit: one signal in flight per
    gate per worker, carrying every release that arrived meanwhile, so at load the gate takes
    one signal (and one workflow task) for many jobs instead of one per job."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._releases: GroupCommit[CapacityRelease, None] = GroupCommit(
            self._send, linger=RELEASE_LINGER_SECONDS, max_batch=MAX_RELEASES_PER_SIGNAL
        )

    async def release(self, gate_id: str, message: CapacityRelease) -> None:
        """Return once the gate has the release (a gone gate holds no slot); else raise
        `CapacityReleaseFailed` (retryable: the read is tried again)."""
        try:
            await self._releases.add(gate_id, message)
        except Exception as err:
            raise ApplicationError(
                f"capacity gate {gate_id} did not take the release of job {message.job_id}: "
                f"{err}; the task is read again and its slot released then",
                type=et.CAPACITY_RELEASE_FAILED,
            ) from None

    async def _send(self, gate_id: str, releases: list[CapacityRelease]) -> None:
        handle = self._client.get_workflow_handle(gate_id)
        try:
            await handle.signal(CapacityGateWorkflow.releases, CapacityReleases(releases=releases))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            log.info("capacity.release_to_gone_gate", gate=gate_id, jobs=len(releases))


class CapacityActivities:
    def __init__(self, client: Client, provider: ProviderClient, settings: Settings) -> None:
        self._client = client
        self._provider = provider
        self._settings = settings

    @activity.defn(name="check_capacity_holders")
    async def check_capacity_holders(self, data: HolderChecks) -> HolderCheckResult:
        result = HolderCheckResult()
        for holder in data.holders:
            keep = await self._still_held(data.route, holder)
            (result.alive if keep else result.released).append(holder.job_id)
        if result.released:
            log.info("capacity.released_by_check", route=data.route, jobs=result.released)
        return result

    async def _still_held(self, route: str, holder: HolderCheck) -> bool:
        """Held while the job runs (it releases itself) or while its task runs at the provider."""
        task_id = holder.task_id
        try:
            desc = await self._client.get_workflow_handle(holder.job_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        else:
            if desc.status == WorkflowExecutionStatus.RUNNING and not holder.orphan:
                return True
            task_id = task_id or desc.typed_search_attributes.get(PROVIDER_TASK_ID)
        if not task_id:
            return False  # no task was ever made (or its create died with the job)
        try:
            task = await self._provider.get(self._settings.route(route), route, task_id)
        except ProviderHTTPError as exc:
            if exc.status == 404:
                return False
            raise
        except ProviderError:
            raise
        return not task.terminal
