"""The capacity gate's I/O: opening a gate for the first job of an account, and checking the
holders a gate has not heard from (is the job alive? does its task still run at the provider?).

Activities, not workflow code: signal-with-start and describing another workflow are client
calls, and reading a task needs the provider key, which only the worker holds.
"""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.adapters.provider_client import (
    ProviderClient,
    ProviderError,
    ProviderHTTPError,
)
from seedance_pipeline.core.capacity import (
    Gate,
    HolderCheck,
    HolderCheckResult,
    HolderChecks,
    OpenGate,
)
from seedance_pipeline.core.search_attributes import PROVIDER_TASK_ID
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.capacity_gate import CapacityGateWorkflow

log = structlog.get_logger(__name__)


class CapacityActivities:
    def __init__(self, client: Client, provider: ProviderClient, settings: Settings) -> None:
        self._client = client
        self._provider = provider
        self._settings = settings

    @activity.defn(name="open_capacity_gate")
    async def open_capacity_gate(self, data: OpenGate) -> None:
        """Signal-with-start: the gate exists from the first request on, whoever sends it."""
        ref = data.ref
        gate = Gate(
            route=ref.route, config=ref.config, queued_learned=float(ref.config.queued_per_account)
        )
        await self._client.start_workflow(
            CapacityGateWorkflow.run,
            gate,
            id=ref.gate_id,
            task_queue=ref.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="request",
            start_signal_args=[data.request],
        )

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
