"""ModelHealthWorkflow: one durable circuit breaker per model (ID `model-health:<alias>`).

Every worker's jobs report outcomes to it (update-with-start, batched per worker, so it exists
from first use) and ask it for admission before submitting (update-with-start, batched per
worker too, so half-open probes are handed out one by one in the entity, yet a burst behind an
open breaker is a few updates, not one per job: Temporal allows 10 in flight per workflow; a
worker remembers a closed answer for a moment, see `activities.breaker_view`), which makes the
breaker's view shared by all workers and kept across restarts.
The rules live in `core.breaker`; this class adds time (the cool-down timer), persistence and
continue-as-new.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.breaker import (
        Admission,
        Breaker,
        BreakerConfig,
        BreakerState,
        HealthReport,
    )
    from seedance_pipeline.workflows.payloads import one


class AdmitRequest(BaseModel):
    job_id: str
    config: BreakerConfig
    """The current thresholds from the asking worker's settings: a config change applies
    without a deploy or a reset."""


class ForceRequest(BaseModel):
    state: str
    reason: str = "operator"


def workflow_id(alias: str, scope: str = "") -> str:
    return f"model-health:{alias}" + (f"@{scope}" if scope else "")


@workflow.defn
class ModelHealthWorkflow:
    @workflow.init
    def __init__(self, breaker: Any) -> None:
        # Set from the input before any handler runs: with signal-with-start and
        # update-with-start, the first report or admission arrives before `run` starts.
        # Validated here, not decoded by the SDK: a run started by hand with a malformed
        # input would fail its first workflow task forever, and with it every job's admit.
        self._breaker: Breaker | None = one((breaker,), Breaker)
        self._changed = False

    @workflow.run
    async def run(self, breaker: Any) -> None:
        if self._breaker is None:
            raise ApplicationError(
                "invalid breaker input: not a Breaker", type=et.BREAKER_INVALID, non_retryable=True
            )
        while True:
            b = self._require()
            reopen = b.reopen_at()
            timeout = None
            if reopen is not None:
                timeout = timedelta(seconds=max(0.0, (reopen - workflow.now()).total_seconds()))
            try:
                await workflow.wait_condition(
                    lambda: self._changed or workflow.info().is_continue_as_new_suggested(),
                    timeout=timeout,
                )
            except TimeoutError:
                b.cool_down(workflow.now())
            self._changed = False
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._require())

    def _require(self) -> Breaker:
        if self._breaker is None:  # run() fails first; handlers' validators refuse before this
            raise ApplicationError(
                "invariant broken: breaker used before a valid start",
                type=et.INVARIANT_BROKEN,
                non_retryable=True,
            )
        return self._breaker

    @workflow.signal
    def report(self, *payload: Any) -> None:
        """A job's outcome. Decoded here, not by the SDK: a typed handler sent no or two
        arguments raises TypeError, which fails every workflow task of the one breaker all
        jobs of the model ask (retried forever). Anything but one valid report is dropped."""
        report = one(payload, HealthReport)
        if report is None or self._breaker is None:
            workflow.logger.warning("breaker: dropped a malformed report (%d args)", len(payload))
            return
        before = self._breaker.state
        self._breaker.record(report)
        if self._breaker.state != before:
            workflow.logger.info(
                "breaker %s: %s -> %s", self._breaker.model, before, self._breaker.state
            )
        self._changed = True

    @workflow.update
    def report_many(self, reports: list[HealthReport]) -> Breaker:
        """A worker's batch of outcomes (group commit); answers with the breaker after them,
        so the reporting worker's view is current at once."""
        for report in reports:
            self.report(report)
        return self._require()

    @report_many.validator
    def _validate_report_many(self, reports: list[HealthReport]) -> None:
        """Rejected before acceptance (see `_validate_admit_many`): the caller's error."""
        if not isinstance(reports, list) or not all(isinstance(r, HealthReport) for r in reports):
            raise ValueError("report_many takes one list of HealthReport")
        if self._breaker is None:
            raise ValueError("this breaker was started with an invalid input")

    @workflow.update
    def admit_many(self, requests: list[AdmitRequest]) -> list[Admission]:
        """A worker's admissions for the jobs that asked together, in their order (group
        commit): a half-open breaker's probes go to the first of them, one by one."""
        b = self._require()
        admissions = []
        for request in requests:
            b.config = request.config
            admissions.append(b.admit(workflow.now()))
        self._changed = True
        return admissions

    @admit_many.validator
    def _validate_admit_many(self, requests: list[AdmitRequest]) -> None:
        """Sent with no or two arguments, the call raises TypeError here, before acceptance,
        which rejects the update; in the handler it would fail the workflow task instead."""
        if not isinstance(requests, list) or not all(isinstance(r, AdmitRequest) for r in requests):
            raise ValueError("admit_many takes one list of AdmitRequest")
        if self._breaker is None:
            raise ValueError("this breaker was started with an invalid input")

    @workflow.update
    def force(self, request: ForceRequest) -> Breaker:
        b = self._require()
        b.force(BreakerState(request.state), workflow.now())
        self._changed = True
        return b

    @force.validator
    def _validate_force(self, request: ForceRequest) -> None:
        if self._breaker is None:
            raise ValueError("this breaker was started with an invalid input")
        if request.state not in (BreakerState.OPEN.value, BreakerState.CLOSED.value):
            raise ValueError(
                f"state must be 'open' (trip) or 'closed' (reset), not {request.state!r}"
            )

    @workflow.query
    def state(self) -> Breaker:
        return self._require()
