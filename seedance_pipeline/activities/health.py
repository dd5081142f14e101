"""Talking to the per-model breakers from jobs: ask for a model, report an outcome.

Activities (not workflow code) because update-with-start is a client call: the breaker entity
is created on first use, and the decision comes back into the job's history as an activity
result. Closed answers are remembered per worker for a moment (`activities.breaker_view`), and
the asks that still go out (an open or half-open breaker) and the reports are batched
(`activities.group_commit`): the entity sees a few calls a second, not two per job, and never
more updates in flight than Temporal allows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from seedance_pipeline.activities.breaker_view import ClosedBreakerCache
from seedance_pipeline.activities.group_commit import GroupCommit
from seedance_pipeline.core.breaker import Admission, Breaker, BreakerConfig, HealthReport
from seedance_pipeline.core.models import ChooseModelInput, ModelChoice, ReportHealthInput
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.model_health import AdmitRequest, ModelHealthWorkflow, workflow_id


def fallback_chain(settings: Settings, alias: str) -> list[str]:
    chain: list[str] = []
    while alias and alias not in chain and alias in settings.models:
        chain.append(alias)
        alias = settings.models[alias].fallback or ""
    return chain


ADMIT_LINGER_SECONDS = 0.005
"""How long a worker gathers admissions for an open or half-open breaker: a burst's asks share
an update, and a job waits no longer than it would for the entity anyway."""


class HealthActivities:
    def __init__(self, client: Client, settings: Settings, identity: str = "") -> None:
        self._client = client
        self._settings = settings
        self._identity = identity or client.identity
        cfg = settings.breaker
        self._closed = ClosedBreakerCache(cfg.admission_cache_seconds)
        self._reports: GroupCommit[HealthReport, Breaker] = GroupCommit(
            self._send_reports, linger=cfg.report_linger_seconds, max_batch=cfg.report_batch_max
        )
        self._admissions: GroupCommit[AdmitRequest, dict[str, Admission]] = GroupCommit(
            self._send_admissions, linger=ADMIT_LINGER_SECONDS, max_batch=cfg.report_batch_max
        )

    def _config(self) -> BreakerConfig:
        return self._settings.breaker.thresholds()

    def _start(self, alias: str) -> WithStartWorkflowOperation[ModelHealthWorkflow, None]:
        return WithStartWorkflowOperation(
            ModelHealthWorkflow.run,
            Breaker(model=alias, config=self._config()),
            id=workflow_id(alias, self._settings.breaker.scope),
            task_queue=self._settings.temporal.entity_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    @activity.defn(name="choose_model")
    async def choose_model(self, data: ChooseModelInput) -> ModelChoice:
        """The first model along the fallback chain whose breaker admits the job."""
        chain = fallback_chain(self._settings, data.alias)
        states: dict[str, str] = {}
        for alias in chain:
            admission = await self._closed.admit(alias, partial(self._ask, alias, data.job_id))
            states[alias] = admission.state.value
            if admission.allowed:
                return ModelChoice(
                    alias=alias,
                    probe=admission.probe,
                    states=states,
                    decided_by=self._identity,
                    cached=admission.cached,
                )
        return ModelChoice(
            alias=data.alias,
            probe=False,
            states=states,
            reason="every breaker in the chain is open; trying the primary",
            decided_by=self._identity,
        )

    async def _ask(self, alias: str, job_id: str) -> Admission:
        answers = await self._admissions.add(
            alias, AdmitRequest(job_id=job_id, config=self._config())
        )
        return answers[job_id]

    async def _send_admissions(
        self, alias: str, requests: list[AdmitRequest]
    ) -> dict[str, Admission]:
        admissions = await self._client.execute_update_with_start_workflow(
            ModelHealthWorkflow.admit_many, requests, start_workflow_operation=self._start(alias)
        )
        return {r.job_id: a for r, a in zip(requests, admissions, strict=True)}

    @activity.defn(name="report_health")
    async def report_health(self, data: ReportHealthInput) -> None:
        report = HealthReport(
            job_id=data.job_id,
            ok=data.ok,
            probe=data.probe,
            error_code=data.error_code,
            at=datetime.now(UTC),
        )
        await self._reports.add(data.alias, report)

    async def _send_reports(self, alias: str, reports: list[HealthReport]) -> Breaker:
        breaker = await self._client.execute_update_with_start_workflow(
            ModelHealthWorkflow.report_many,
            reports,
            start_workflow_operation=self._start(alias),
        )
        self._closed.remember(alias, breaker.state)
        return breaker
