"""The job book: the record, its forward-only states, and the search attributes it publishes.

Everything the phases learn is written here, and only here: the `status` query, the result,
the manifest and the Web UI all read this one record. The book never awaits and touches the
workflow only through what it is given (a clock and an upsert), so its rules are unit-tested
without a Temporal server (`tests/workflows/test_book.py`).

Search attributes are batched: a change is held until the next *visible* state change
publishes it with the state (one upsert instead of one per field), except the provider task ID,
which other jobs' reconciliation looks up at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio.common import SearchAttributeUpdate
from temporalio.workflow import unsafe

with unsafe.imports_passed_through():
    from seedance_pipeline.core import search_attributes as sa
    from seedance_pipeline.core.job_state import (
        TERMINAL_JOB_STATES,
        job_moves_forward,
        provider_moves_forward,
    )
    from seedance_pipeline.core.models import (
        Attempt,
        ErrorInfo,
        GenerationInput,
        JobRecord,
        JobState,
        Outcome,
        ProviderTask,
        ResolvedModel,
        StateChange,
    )
    from seedance_pipeline.core.pricing import cost
    from seedance_pipeline.workflows.generation.ending import invariant_broken

Clock = Callable[[], datetime]
Upsert = Callable[[Sequence[SearchAttributeUpdate[Any]]], None]

MAX_IGNORED_NOTES = 5
"""Ignored callbacks noted one by one; past this they are only counted, so a flood of posts to
a job's callback URL cannot grow its record (query, result, manifest) without bound."""
QUIET_STATES = frozenset({JobState.SUBMITTING})
"""States published only with the next change: they last milliseconds unless a create is
retried, and a retry publishes them before it sleeps."""
FINAL_STATE = {
    Outcome.SUCCEEDED: JobState.SUCCEEDED,
    Outcome.REJECTED_MODERATION: JobState.REJECTED,
    Outcome.CANCELLED: JobState.CANCELLED,
}


class JobBook:
    def __init__(self, record: JobRecord, *, clock: Clock, upsert: Upsert) -> None:
        self.record = record
        self.now = clock
        self._upsert = upsert
        self._pending: dict[str, SearchAttributeUpdate[Any]] = {}

    @classmethod
    def open(
        cls,
        inp: GenerationInput | None,
        job_id: str,
        *,
        run: str = "",
        clock: Clock,
        upsert: Upsert,
    ) -> JobBook:
        """A new job's book (`inp` None: a job started with an input that is not a job's).
        `run` (the workflow's run ID) keeps a rerun's ledger rows and outputs apart."""
        now = clock()
        request = inp.request if inp else None
        record = JobRecord(
            job_id=inp.job_id if inp else job_id,
            request=request,
            candidate=inp.candidate if inp else 0,
            run=run,
            tenant=inp.tenant if inp else None,
            metadata=dict(inp.metadata) if inp else {},
            requested_at=now,
        )
        record.timeline.append(StateChange(state=record.state, at=now))
        return cls(record, clock=clock, upsert=upsert)

    # ---- states and search attributes ------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.record.state in TERMINAL_JOB_STATES

    def move_to(self, state: JobState, note: str = "") -> None:
        """Advance the job's state (never backwards) and publish it."""
        rec = self.record
        if not job_moves_forward(rec.state, state):
            return
        rec.state = state
        rec.timeline.append(StateChange(state=state, at=self.now(), note=note))
        self.publish([sa.JOB_STATE.value_set(state.value)], flush=state not in QUIET_STATES)

    def publish(self, updates: Sequence[SearchAttributeUpdate[Any]], *, flush: bool) -> None:
        for update in updates:
            self._pending[update.key.name] = update
        if flush:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._upsert(list(self._pending.values()))
            self._pending.clear()

    def note(self, text: str) -> None:
        self.record.notes.append(text)

    def ignore_callback(self, note: str) -> None:
        rec = self.record
        rec.callbacks_ignored += 1
        if rec.callbacks_ignored <= MAX_IGNORED_NOTES:
            rec.notes.append(note)
        elif rec.callbacks_ignored == MAX_IGNORED_NOTES + 1:
            rec.notes.append("more ignored callbacks: counted in callbacks_ignored, not noted")

    # ---- model and attempts ----------------------------------------------------------------

    def use_model(self, model: ResolvedModel, *, fallback: bool) -> None:
        rec = self.record
        rec.route, rec.model_alias, rec.model_id = model.route, model.alias, model.model_id
        rec.currency, rec.resolution, rec.ratio = model.currency, model.resolution, model.ratio
        rec.duration = rec.request.duration if rec.request else None
        rec.estimated_tokens, rec.estimated_cost = model.estimated_tokens, model.estimated_cost
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.MODEL.value_set(model.alias),
            sa.MODEL_ID.value_set(model.model_id),
            sa.ROUTE.value_set(model.route),
        ]
        if fallback:
            updates.append(sa.FALLBACK.value_set(True))
        self.publish(updates, flush=False)

    def start_attempt(self, model: ResolvedModel) -> Attempt:
        """A new create on `model`: its submit number is its place in the record."""
        rec = self.record
        at = self.now()
        attempt = Attempt(
            submit_no=len(rec.attempts) + 1,
            model_alias=model.alias,
            model_id=model.model_id,
            route=model.route,
            submitted_at=at,
            unit_price=model.unit_price,
            currency=model.currency,
        )
        rec.attempts.append(attempt)
        rec.submitted_at = rec.submitted_at or at
        return attempt

    def take_back(self, attempt: Attempt) -> None:
        """The create sent nothing (its capacity gate held it back): it is no attempt, and its
        submit number is the next create's."""
        rec = self.record
        if rec.attempts and rec.attempts[-1] is attempt:
            rec.attempts.pop()
        if not rec.attempts:
            rec.submitted_at = None

    @property
    def attempt(self) -> Attempt:
        if not self.record.attempts:
            raise invariant_broken("a provider answer arrived before any create")
        return self.record.attempts[-1]

    def expect_task(self) -> None:
        """Forget the previous create's task: the next create's task is the one followed."""
        self.record.provider_task_id, self.record.provider_status = None, None

    def task_accepted(self, task_id: str) -> None:
        """The provider took the create: this task is the job's until it ends."""
        rec = self.record
        rec.provider_task_id = task_id
        self.attempt.provider_task_id = task_id
        self.publish([sa.PROVIDER_TASK_ID.value_set(task_id)], flush=False)

    # ---- provider answers ------------------------------------------------------------------

    def apply(self, task: ProviderTask) -> bool:
        """Take a provider status if it moves forward; True when it did."""
        rec = self.record
        if not provider_moves_forward(rec.provider_status, task.status):
            return False
        rec.provider_status = task.status
        rec.provider_created_at = _utc(task.created_at) or rec.provider_created_at
        rec.provider_updated_at = _utc(task.updated_at) or rec.provider_updated_at
        attempt = self.attempt
        attempt.status = task.status
        if task.status == "queued":
            self.move_to(JobState.QUEUED)
        elif task.status == "running":
            self.move_to(JobState.RUNNING)
        elif task.status == "succeeded":
            attempt.billed_tokens = task.usage.completion_tokens if task.usage else 0
            self._take_result(task)
        return True

    def _take_result(self, task: ProviderTask) -> None:
        rec = self.record
        rec.tokens = task.usage.completion_tokens if task.usage else 0
        rec.seed = task.seed
        rec.ratio = task.ratio or rec.ratio
        rec.resolution = task.resolution or rec.resolution
        rec.duration = task.duration or rec.duration
        if task.content:
            rec.provider_video_url = task.content.video_url
            rec.provider_last_frame_url = task.content.last_frame_url

    # ---- the end ---------------------------------------------------------------------------

    def billed_cost(self) -> float:
        """What the provider billed this job, at each attempt's own price."""
        return round(sum(cost(a.billed_tokens, a.unit_price) for a in self.record.attempts), 6)

    def close(self, outcome: Outcome, error: ErrorInfo | None) -> None:
        """Write the outcome and publish it (the final state is published after the manifest)."""
        rec = self.record
        rec.outcome, rec.error, rec.finished_at = outcome, error, self.now()
        if rec.attempts:
            rec.cost = self.billed_cost()
        updates: list[SearchAttributeUpdate[Any]] = [sa.OUTCOME.value_set(outcome.value)]
        if rec.cost is not None:
            key = sa.COST_USD if rec.currency == "USD" else sa.COST_CNY
            updates.append(key.value_set(rec.cost))
        if error is not None:
            updates.append(sa.ERROR_CODE.value_set(error.code[:200]))
        self.publish(updates, flush=False)

    def final_state(self) -> None:
        """The last state change: the job is done and every attribute is published."""
        outcome = self.record.outcome or Outcome.FAILED_INFRA
        self.move_to(FINAL_STATE.get(outcome, JobState.FAILED))
        self.flush()


def _utc(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None
