"""Talking to the per-model breakers from jobs: ask for a model, report an outcome.

Activities (not workflow code) because signal-with-start and update-with-start are client
calls: the breaker entity is created on first use, and the decision comes back into the job's
history as an activity result.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from core.breaker import Breaker, BreakerConfig, HealthReport
from core.models import ChooseModelInput, ModelChoice, ReportHealthInput
from core.settings import Settings
from workflows.model_health import AdmitRequest, ModelHealthWorkflow, workflow_id


def fallback_chain(settings: Settings, alias: str) -> list[str]:
    chain: list[str] = []
    while alias and alias not in chain and alias in settings.models:
        chain.append(alias)
        alias = settings.models[alias].fallback or ""
    return chain


class HealthActivities:
    def __init__(self, client: Client, settings: Settings, identity: str = "") -> None:
        self._client = client
        self._settings = settings
        self._identity = identity or client.identity

    def _config(self) -> BreakerConfig:
        return self._settings.breaker.thresholds()

    def _start(self, alias: str) -> WithStartWorkflowOperation[ModelHealthWorkflow, None]:
        return WithStartWorkflowOperation(
            ModelHealthWorkflow.run,
            Breaker(model=alias, config=self._config()),
            id=workflow_id(alias, self._settings.breaker.scope),
            task_queue=self._settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    @activity.defn
    async def choose_model(self, data: ChooseModelInput) -> ModelChoice:
        """The first model along the fallback chain whose breaker admits the job."""
        chain = fallback_chain(self._settings, data.alias)
        states: dict[str, str] = {}
        for alias in chain:
            admission = await self._client.execute_update_with_start_workflow(
                ModelHealthWorkflow.admit,
                AdmitRequest(job_id=data.job_id, config=self._config()),
                start_workflow_operation=self._start(alias),
            )
            states[alias] = admission.state.value
            if admission.allowed:
                return ModelChoice(
                    alias=alias, probe=admission.probe, states=states, decided_by=self._identity
                )
        return ModelChoice(
            alias=data.alias,
            probe=False,
            states=states,
            reason="every breaker in the chain is open; trying the primary",
            decided_by=self._identity,
        )

    @activity.defn
    async def report_health(self, data: ReportHealthInput) -> None:
        report = HealthReport(
            job_id=data.job_id,
            ok=data.ok,
            probe=data.probe,
            error_code=data.error_code,
            at=datetime.now(UTC),
        )
        await self._client.start_workflow(
            ModelHealthWorkflow.run,
            Breaker(model=data.alias, config=self._config()),
            id=workflow_id(data.alias, self._settings.breaker.scope),
            task_queue=self._settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            start_signal="report",
            start_signal_args=[report],
        )
