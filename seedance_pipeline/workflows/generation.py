"""GenerationWorkflow: one durable workflow per video generation job (workflow ID = job ID).

    resolve + validate -> submit (once) -> wait (callbacks first, slow poll as repair, deadline)
      -> confirm with GET -> copy video (+ last frame) -> ledger -> manifest -> record

The job record is the single source of truth for the `status` query, the result, the manifest
and the search attributes. Provider states only move forward, so duplicate, late and
out-of-order callbacks are harmless. A create is retried only when it provably never reached
the provider; after an ambiguous create the workflow reconciles (the task announces itself
through the job's callback URL, or the list endpoint shows it) before any new create.
Activities are called by name so this module never imports httpx or boto3.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeout

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from seedance_pipeline.core import metric_names as names
    from seedance_pipeline.core import search_attributes as sa
    from seedance_pipeline.core.budget import BudgetCheckInput, BudgetRelease, BudgetVerdict
    from seedance_pipeline.core.job_state import (
        TERMINAL_JOB_STATES,
        job_moves_forward,
        provider_moves_forward,
    )
    from seedance_pipeline.core.manifest import build_manifest
    from seedance_pipeline.core.models import (
        Attempt,
        CheckedReference,
        CheckReferencesInput,
        ChooseModelInput,
        CopyOutputInput,
        CreateTaskInput,
        CreateTaskResult,
        ErrorInfo,
        ExtendRequest,
        FindTasksInput,
        GenerationInput,
        JobRecord,
        JobState,
        LedgerEntry,
        ManifestInput,
        ModelChoice,
        Outcome,
        ProviderCallback,
        ProviderTask,
        ReportHealthInput,
        ResolvedModel,
        ResolveInput,
        StateChange,
        StoredObject,
        TaskOwnersInput,
        TaskRef,
    )
    from seedance_pipeline.core.outcomes import classify_task_failure
    from seedance_pipeline.core.pricing import cost, estimate_tokens
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows.payloads import one

SUBMIT_QUEUE_MEMO = "submit_task_queue"
MAX_IGNORED_NOTES = 5
"""Ignored callbacks noted one by one; past this they are only counted, so a flood of posts
to a job's callback URL cannot grow its record (query, result, manifest) without bound."""
RECONCILE_ROUNDS = 3
BREAKER_PATCH = "model-health-breaker"
MAX_EXTENSION_MINUTES = 24 * 60
BUDGET_PATCH = "ledger-budget"
CONFIRM_PATCH = "confirm-terminal-callbacks"
BOUNDED_AMBIGUOUS_PATCH = "bounded-ambiguous-creates"
QUIET_STATES = frozenset({JobState.SUBMITTING})
"""States published only with the next search-attribute change (they last milliseconds unless
the create is retried, and then they are published before the wait)."""
SAFE_CREATE_ERRORS = {"ProviderNotReached", "ProviderRateLimited", "ProviderUnavailable"}
AMBIGUOUS_CREATE_ERRORS = {"ProviderAmbiguous", "ProviderBadResponse"}


class CreateExhausted(Exception):
    """Internal: creates on this model keep being refused; the job should fall back."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


class JobEnded(Exception):
    """Internal: the job reached a final outcome early (never escapes `run`)."""

    def __init__(self, outcome: Outcome, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.outcome = outcome
        self.error = error


def _parse_input(raw: Any) -> tuple[GenerationInput | None, str]:
    """(input, "") or (None, what is wrong: fields and messages, never the values)."""
    try:
        return GenerationInput.model_validate(raw), ""
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
            for err in exc.errors(include_url=False, include_input=False)[:5]
        ]
        more = exc.error_count() - len(problems)
        return None, "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def _utc(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _error_from(err: BaseException) -> tuple[str, ErrorInfo, Outcome]:
    """(type, verbatim error, outcome) from an activity failure."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError):
        det: dict[str, Any] = {}
        if cause.details and isinstance(cause.details[0], dict):
            det = cause.details[0]
        outcome = (
            Outcome(det.get("outcome", Outcome.FAILED_INFRA.value))
            if det.get("outcome") in Outcome._value2member_map_
            else Outcome.FAILED_INFRA
        )
        info = ErrorInfo(
            code=str(det.get("code") or cause.type or "Error"),
            message=str(det.get("message") or cause.message),
            http_status=det.get("http_status"),
        )
        return cause.type or "ApplicationError", info, outcome
    if isinstance(cause, TemporalTimeout):
        info = ErrorInfo(code="ActivityTimeout", message=str(cause), source="pipeline")
        return "ActivityTimeout", info, Outcome.FAILED_INFRA
    info = ErrorInfo(
        code=type(cause).__name__ if cause else "Error",
        message=str(cause or err),
        source="pipeline",
    )
    return info.code, info, Outcome.FAILED_INFRA


@workflow.defn
class GenerationWorkflow:
    @workflow.init
    def __init__(self, inp: Any) -> None:
        # The input is validated here rather than decoded by the SDK as a GenerationInput: a
        # job started past the starter (CLI, Web UI) with a malformed input would otherwise
        # fail its first workflow task forever; now `run` fails the workflow with the reason.
        self._input, self._bad_input = _parse_input(inp)
        # The record exists before `run` starts, so a query or an operator's update that
        # arrives with the first workflow task sees the job, not "not started".
        self._record: JobRecord | None = None
        if self._input is not None:
            self._record = JobRecord(
                job_id=self._input.job_id,
                request=self._input.request,
                candidate=self._input.candidate,
                requested_at=workflow.now(),
            )
        self._model: ResolvedModel | None = None
        self._submit_no = 0
        self._current_submit: int | None = None
        self._announced: dict[int, ProviderTask] = {}
        self._terminal_hint = False
        self._poke = False
        self._submit_queue = "seedance-submit"
        self._use_breaker = False
        self._budget_checked = False
        self._extension = timedelta(0)
        # Version by input: `start_job` sets JobState with the start since v3, so a job started
        # that way runs the v3 shape with no patch marker (each costs a marker event plus a
        # TemporalChangeVersion upsert). v3: one upsert per visible change instead of one per
        # field; the copy before the breaker report; the breaker, budgets, confirmed terminal
        # callbacks and bounded ambiguous creates without their patches. Older histories keep
        # their shapes.
        started_with = {p.key.name for p in workflow.info().typed_search_attributes}
        self._v3 = sa.JOB_STATE.name in started_with
        self._sa_pending: dict[str, SearchAttributeUpdate[Any]] = {}

    # ---- messages -----------------------------------------------------------------------

    @workflow.query
    def status(self) -> JobRecord | None:
        return self._record

    @workflow.signal
    def provider_callback(self, *payload: Any) -> None:
        """A provider callback relayed by the webhook receiver (an unsigned hint).

        Decoded here, not by the SDK: a typed one-argument handler turns a signal sent with
        no or two arguments into a TypeError that fails every workflow task of the job
        (retried forever). Anything that is not exactly one valid callback is counted as
        ignored and noted.
        """
        rec = self._record
        if rec is None:
            return
        callback = one(payload, ProviderCallback)
        if callback is None:
            rec.callbacks_received += 1
            self._ignore(f"ignored a malformed callback signal ({len(payload)} args)")
            return
        rec.callbacks_received += 1
        task = callback.task
        if rec.state in TERMINAL_JOB_STATES:
            rec.callbacks_ignored += 1
            return
        if callback.submit_no == self._current_submit and rec.provider_task_id is None:
            # The task answers the create in flight (or an ambiguous one): it announces itself.
            known = self._announced.get(callback.submit_no)
            if known is None or provider_moves_forward(known.status, task.status):
                self._announced[callback.submit_no] = task
            return
        if rec.provider_task_id is None or task.id != rec.provider_task_id:
            self._ignore(f"ignored callback for task {task.id} (submit {callback.submit_no})")
            return
        if self._unconfirmed(task):
            # The body is unsigned (anyone holding the callback URL can post one): a terminal
            # status only triggers the confirming GET, whose answer is the one applied.
            if not provider_moves_forward(rec.provider_status, task.status):
                return
            self._terminal_hint = True
            return
        if self._apply(task) and task.terminal:
            self._terminal_hint = True

    @workflow.update
    def extend(self, request: ExtendRequest) -> JobRecord:
        """Operator: move this job's deadline later (a slow provider day, a flex job)."""
        rec = self._require_record()
        self._extension += timedelta(minutes=request.minutes)
        rec.deadline_extension_minutes += request.minutes
        rec.notes.append(f"deadline extended by {request.minutes} min ({request.reason})")
        return rec

    @extend.validator
    def _validate_extend(self, request: ExtendRequest) -> None:
        rec = self._record
        if rec is None:
            raise ValueError("the job has not started yet")
        if rec.state in TERMINAL_JOB_STATES:
            raise ValueError(f"job {rec.job_id} already finished ({rec.state.value})")
        total = rec.deadline_extension_minutes + request.minutes
        if total > MAX_EXTENSION_MINUTES:
            raise ValueError(
                f"extensions would total {total} min; the maximum is "
                f"{MAX_EXTENSION_MINUTES} min (the provider expires tasks anyway)"
            )

    @workflow.signal
    def poke(self, *_: Any) -> None:
        """Operator: check the provider now (a callback was lost). Arguments are ignored, so
        a poke sent with some cannot fail the workflow task."""
        self._poke = True

    # ---- main ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: Any) -> JobRecord:
        job = self._input  # `inp` validated by __init__
        if job is None:
            raise ApplicationError(
                f"invalid job input: {self._bad_input}", type="RequestInvalid", non_retryable=True
            )
        memo = workflow.memo()
        if SUBMIT_QUEUE_MEMO in memo:
            self._submit_queue = str(workflow.memo_value(SUBMIT_QUEUE_MEMO, type_hint=str))
        rec = self._require_record()
        if self._v3:
            rec.state = JobState.RECEIVED
            rec.timeline.append(StateChange(state=JobState.RECEIVED, at=workflow.now()))
        else:
            self._set_state(JobState.RECEIVED)
        try:
            await self._run_job(job)
        except JobEnded as ended:
            await self._finish(ended.outcome, ended.error)
        except asyncio.CancelledError:
            await self._on_cancel()
            raise
        return rec

    async def _run_job(self, inp: GenerationInput) -> None:
        rec = self._require_record()
        model = await self._resolve(inp, alias=None)
        if inp.request.references and model.check_references:
            await self._check_references(inp)
        self._use_breaker = model.breaker and (self._v3 or workflow.patched(BREAKER_PATCH))
        probe = False
        if self._use_breaker:
            model, probe = await self._route_by_breaker(inp, model)
        attempts_on_model = 0
        while True:
            await self._check_budget(model)
            try:
                task = await self._submit_and_wait(model)
            except CreateExhausted as exhausted:
                await self._report(model, ok=False, probe=probe, code=exhausted.error.code)
                model, probe, attempts_on_model = (
                    await self._fall_back(model, exhausted.error),
                    False,
                    0,
                )
                continue
            attempts_on_model += 1
            if task.status == "succeeded":
                if self._v3:  # copy first: the breaker report is not on the way to storage
                    try:
                        await self._store(task, model)
                    except JobEnded:  # the copy failed, the provider did not
                        await self._report(model, ok=True, probe=probe)
                        raise
                    await self._report(model, ok=True, probe=probe)
                else:
                    await self._report(model, ok=True, probe=probe)
                    await self._store(task, model)
                await self._finish(Outcome.SUCCEEDED, None)
                return
            cls = classify_task_failure(task.status, task.error.code if task.error else None)
            error = ErrorInfo(
                code=task.error.code if task.error else task.status,
                message=task.error.message if task.error else f"provider task ended {task.status}",
            )
            self._attempt().error = error
            if cls.outcome == Outcome.FAILED_INFRA:
                await self._report(model, ok=False, probe=probe, code=error.code)
            if not cls.retryable:
                raise JobEnded(cls.outcome, error)
            if attempts_on_model < model.task_attempts:
                rec.notes.append(
                    f"task {task.id} ended {task.status} ({error.code}); retrying on {model.alias}"
                )
                continue
            model, probe, attempts_on_model = await self._fall_back(model, error), False, 0

    async def _route_by_breaker(
        self, inp: GenerationInput, model: ResolvedModel
    ) -> tuple[ResolvedModel, bool]:
        """Ask the model's breaker (and the fallbacks') which model this job may use."""
        rec = self._require_record()
        ask = ChooseModelInput(job_id=rec.job_id, alias=model.alias)
        try:
            choice = await opts.call("choose_model", ask, ModelChoice, opts.HEALTH)
        except ActivityError as err:
            rec.notes.append(
                f"breaker unavailable ({_error_from(err)[1].message}); using {model.alias}"
            )
            return model, False
        states = ", ".join(f"{k}={v}" for k, v in choice.states.items())
        rec.notes.append(
            f"breakers: {states}; {choice.decided_by} routed to {choice.alias}"
            + (" as a probe" if choice.probe else "")
            + (f" ({choice.reason})" if choice.reason else "")
        )
        if choice.alias != model.alias:
            model = await self._resolve(inp, alias=choice.alias)
        return model, choice.probe

    async def _report(
        self, model: ResolvedModel, *, ok: bool, probe: bool, code: str | None = None
    ) -> None:
        """Tell the model's breaker about an infrastructure outcome (never fails the job)."""
        if not self._use_breaker:
            return
        rec = self._require_record()
        report = ReportHealthInput(
            job_id=rec.job_id, alias=model.alias, ok=ok, probe=probe, error_code=code
        )
        try:
            await opts.call("report_health", report, type(None), opts.HEALTH)
        except ActivityError as err:
            rec.notes.append(f"breaker report lost: {_error_from(err)[1].message}")

    async def _resolve(self, inp: GenerationInput, alias: str | None) -> ResolvedModel:
        rec = self._require_record()
        try:
            resolve = ResolveInput(job_id=inp.job_id, request=inp.request, alias=alias)
            model = await opts.call("resolve_model", resolve, ResolvedModel, opts.RESOLVE)
        except ActivityError as err:
            kind, info, _ = _error_from(err)
            info.source = "validation"
            outcome = (
                Outcome.FAILED_INPUT
                if kind in ("RequestInvalid", "ConfigError")
                else Outcome.FAILED_INFRA
            )
            raise JobEnded(outcome, info) from None
        self._model = model
        rec.route, rec.model_alias, rec.model_id = model.route, model.alias, model.model_id
        rec.currency = model.currency
        rec.resolution, rec.ratio = model.resolution, model.ratio
        rec.duration = inp.request.duration
        seconds = inp.request.duration if inp.request.duration > 0 else 15
        rec.estimated_tokens = estimate_tokens(
            model.pixel_table, model.resolution, model.ratio, seconds
        )
        rec.estimated_cost = cost(rec.estimated_tokens, self._unit_price(model))
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.MODEL.value_set(model.alias),
            sa.MODEL_ID.value_set(model.model_id),
            sa.ROUTE.value_set(model.route),
        ]
        if alias is not None:
            updates.append(sa.FALLBACK.value_set(True))
        self._publish(updates, flush=False)
        return model

    async def _check_budget(self, model: ResolvedModel) -> None:
        """Fail fast, before any paid call, when this job would pass a spending cap."""
        if not model.budgeted or not (self._v3 or workflow.patched(BUDGET_PATCH)):
            return
        self._budget_checked = True
        rec = self._require_record()
        check = BudgetCheckInput(
            job_id=rec.job_id,
            route=model.route,
            currency=model.currency,
            estimate=rec.estimated_cost or 0.0,
            at=workflow.now(),
        )
        verdict = await opts.call("check_budget", check, BudgetVerdict, opts.RECORD)
        if not verdict.allowed:
            raise JobEnded(
                Outcome.FAILED_QUOTA,
                ErrorInfo(code="BudgetExceeded", message=verdict.message, source="pipeline"),
            )

    async def _check_references(self, inp: GenerationInput) -> None:
        """Each reference fetched, typed, sized and hashed before any paid call."""
        rec = self._require_record()
        check = CheckReferencesInput(job_id=inp.job_id, request=inp.request)
        try:
            rec.references_checked = await opts.call(
                "check_references",
                check,
                list[CheckedReference],
                opts.REFERENCES,
            )
        except ActivityError as err:
            _, info, _ = _error_from(err)
            info.source = "validation"
            raise JobEnded(Outcome.FAILED_INPUT, info) from None

    async def _fall_back(self, model: ResolvedModel, error: ErrorInfo) -> ResolvedModel:
        rec = self._require_record()
        if not model.fallback:
            raise JobEnded(Outcome.FAILED_INFRA, error)
        rec.notes.append(f"falling back from {model.alias} to {model.fallback} after {error.code}")
        inp = GenerationInput(job_id=rec.job_id, request=rec.request, candidate=rec.candidate)
        return await self._resolve(inp, alias=model.fallback)

    # ---- submit -------------------------------------------------------------------------

    async def _submit_and_wait(self, model: ResolvedModel) -> ProviderTask:
        rec = self._require_record()
        rec.provider_task_id, rec.provider_status = None, None
        self._terminal_hint = False
        task_id = await self._submit(model)
        rec.provider_task_id = task_id
        self._attempt().provider_task_id = task_id
        self._publish([sa.PROVIDER_TASK_ID.value_set(task_id)], flush=False)
        announced = self._announced.pop(self._current_submit or 0, None)
        if announced is not None and announced.id == task_id:
            if self._unconfirmed(announced):
                self._terminal_hint = True  # confirmed by the first GET of the wait
            else:
                self._apply(announced)
        if rec.provider_status is None:
            self._set_state(JobState.QUEUED, "submitted")
            rec.provider_status = "queued"
        self._flush_search_attributes()  # other jobs' reconciliation looks the task ID up
        return await self._wait(model)

    async def _submit(self, model: ResolvedModel) -> str:
        rec = self._require_record()
        self._set_state(JobState.SUBMITTING)
        safe_failures = 0
        unanswered = 0
        while True:
            self._submit_no += 1
            submit_no = self._submit_no
            self._current_submit = submit_no
            started = workflow.now()
            rec.attempts.append(
                Attempt(
                    submit_no=submit_no,
                    model_alias=model.alias,
                    model_id=model.model_id,
                    route=model.route,
                    submitted_at=started,
                )
            )
            rec.submitted_at = rec.submitted_at or started
            try:
                create = CreateTaskInput(
                    job_id=rec.job_id, submit_no=submit_no, request=rec.request, model=model
                )
                once = opts.Options(
                    timedelta(seconds=model.create_timeout_seconds), opts.CREATE_RETRY
                )
                result = await opts.call(
                    "create_task", create, CreateTaskResult, once, task_queue=self._submit_queue
                )
                return result.task_id
            except ActivityError as err:
                kind, info, outcome = _error_from(err)
                self._attempt().error = info
                if kind in AMBIGUOUS_CREATE_ERRORS or kind == "ActivityTimeout":
                    found = await self._reconcile(model, submit_no, started)
                    if found is not None:
                        return found
                    # Proven task-less, so another create is safe, but not forever: a
                    # provider that keeps answering garbage is a failing model.
                    unanswered += 1
                    if unanswered >= model.create_attempts and (
                        self._v3 or workflow.patched(BOUNDED_AMBIGUOUS_PATCH)
                    ):
                        raise CreateExhausted(info) from None
                    continue
                if kind not in SAFE_CREATE_ERRORS:
                    raise JobEnded(outcome, info) from None
                safe_failures += 1
                if safe_failures >= model.create_attempts:
                    raise CreateExhausted(info) from None
                delay = model.create_backoff_seconds * (2 ** (safe_failures - 1))
                cause = err.cause
                if isinstance(cause, ApplicationError) and cause.next_retry_delay:
                    delay = max(delay, cause.next_retry_delay.total_seconds())
                rec.notes.append(f"create refused ({info.code}); retrying in {delay:.1f}s")
                self._flush_search_attributes()
                await workflow.sleep(min(delay, 300))

    async def _reconcile(
        self, model: ResolvedModel, submit_no: int, started: datetime
    ) -> str | None:
        """After an ambiguous create: find the task it may have made, or prove there is none.

        Proof of ownership is the task announcing itself on this job's callback URL (which
        names the job and the create). Without it, the provider's list is read and every task
        another job already claims (its `ProviderTaskId`) is set aside: when nothing unclaimed
        is left after a few grace rounds, a new create is safe. With callbacks on, an
        unclaimed candidate is never adopted from the list alone (it may be another job's
        whose create is in the same state); polling-only jobs adopt a lone candidate.
        """
        rec = self._require_record()
        rec.notes.append(f"create {submit_no} ambiguous; reconciling before any new create")
        self._flush_search_attributes()
        grace = timedelta(seconds=model.reconcile_grace_seconds)
        unclaimed: list[ProviderTask] = []
        for round_no in range(1, RECONCILE_ROUNDS + 1):
            if model.callbacks_enabled:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: submit_no in self._announced, timeout=grace
                    )
            elif round_no > 1:
                await workflow.sleep(grace)
            if submit_no in self._announced:
                task = self._announced[submit_no]
                rec.notes.append(f"task {task.id} announced itself by callback; adopted")
                return str(task.id)
            unclaimed = await self._unclaimed_candidates(model, started)
            if not unclaimed:
                rec.notes.append(
                    f"no unclaimed task in the provider's list (round {round_no}); "
                    "safe to submit again"
                )
                return None
        if not model.callbacks_enabled and len(unclaimed) == 1:
            rec.notes.append(
                f"task {unclaimed[0].id} is the lone unclaimed candidate in the "
                "provider's list; adopted"
            )
            return unclaimed[0].id
        ids = ", ".join(t.id for t in unclaimed[:10])
        raise JobEnded(
            Outcome.FAILED_INFRA,
            ErrorInfo(
                code="AmbiguousSubmit",
                source="pipeline",
                message=f"create {submit_no} may have made a task, and {len(unclaimed)} "
                f"unclaimed candidates remain ({ids}); not submitting again to avoid paying "
                "twice",
            ),
        )

    async def _unclaimed_candidates(
        self, model: ResolvedModel, started: datetime
    ) -> list[ProviderTask]:
        rec = self._require_record()
        find = FindTasksInput(
            job_id=rec.job_id,
            route=model.route,
            model_id=model.model_id,
            created_after=int(started.timestamp()) - 60,
            created_before=int(workflow.now().timestamp()) + 60,
        )
        listed: list[ProviderTask] = await opts.call(
            "find_tasks", find, list[ProviderTask], opts.FIND
        )
        known = {a.provider_task_id for a in rec.attempts if a.provider_task_id}
        shaped = [
            t
            for t in listed
            if t.id not in known
            and t.status not in ("cancelled",)
            and t.resolution in (None, model.resolution)
            and t.duration in (None, rec.request.duration)
        ]
        if not shaped:
            return []
        owners = await opts.call(
            "task_owners",
            TaskOwnersInput(job_id=rec.job_id, task_ids=[t.id for t in shaped]),
            dict[str, str],
            opts.OWNERS,
        )
        return [t for t in shaped if t.id not in owners]

    # ---- wait ---------------------------------------------------------------------------

    async def _wait(self, model: ResolvedModel) -> ProviderTask:
        """Callbacks first; a slow poll on workflow timers repairs missed ones (no activity slot
        is held between polls); the model's deadlines bound the wait."""
        rec = self._require_record()
        assert rec.provider_task_id is not None
        submitted = workflow.now()
        queue_deadline = submitted + timedelta(seconds=model.queue_deadline_seconds)
        run_deadline = submitted + timedelta(seconds=model.execution_deadline_seconds)
        interval = model.poll_first_seconds
        while True:
            now = workflow.now()
            deadline = queue_deadline if rec.provider_status == "queued" else run_deadline
            deadline += self._extension
            timeout = max(0.0, min(interval, (deadline - now).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._terminal_hint or self._poke, timeout=timedelta(seconds=timeout)
                )
            confirming = self._terminal_hint
            self._poke = False
            task = await self._get(model)
            if confirming:
                rec.confirm_gets += 1  # one GET to confirm an unsigned terminal callback
            else:
                rec.polls += 1
            self._apply(task)
            if task.terminal:
                return task
            self._terminal_hint = False
            now = workflow.now()
            deadline = queue_deadline if rec.provider_status == "queued" else run_deadline
            if now >= deadline + self._extension:
                return await self._past_deadline(model, task)
            interval = min(
                max(interval * model.poll_backoff, model.poll_min_seconds), model.poll_max_seconds
            )

    async def _get(self, model: ResolvedModel) -> ProviderTask:
        rec = self._require_record()
        assert rec.provider_task_id is not None
        try:
            ref = TaskRef(job_id=rec.job_id, route=model.route, task_id=rec.provider_task_id)
            return await opts.call("get_task", ref, ProviderTask, opts.GET)
        except ActivityError as err:
            _, info, outcome = _error_from(err)
            raise JobEnded(outcome, info) from None

    async def _past_deadline(self, model: ResolvedModel, task: ProviderTask) -> ProviderTask:
        rec = self._require_record()
        which = "queue" if task.status == "queued" else "execution"
        message = f"provider task {task.id} still {task.status} past the {which} deadline"
        if task.status == "queued":
            cancelled = await self._cancel_provider_task(model)
            message += "; cancelled at the provider" if cancelled else "; cancel refused"
        else:
            message += "; the provider cannot cancel a running task and may still bill it"
        rec.notes.append(message)
        raise JobEnded(
            Outcome.FAILED_INFRA,
            ErrorInfo(
                code=f"{which.capitalize()}DeadlineExceeded", message=message, source="pipeline"
            ),
        )

    async def _cancel_provider_task(self, model: ResolvedModel) -> bool:
        rec = self._require_record()
        if rec.provider_task_id is None:
            return False
        ref = TaskRef(job_id=rec.job_id, route=model.route, task_id=rec.provider_task_id)
        return await opts.call("cancel_task", ref, bool, opts.CANCEL)

    # ---- store, record ------------------------------------------------------------------

    async def _store(self, task: ProviderTask, model: ResolvedModel) -> None:
        rec = self._require_record()
        self._set_state(JobState.STORING)
        video = await self._copy(task, model, "video")
        rec.video_uri, rec.video_sha256, rec.video_bytes = video.uri, video.sha256, video.size
        if rec.request.return_last_frame:
            frame = await self._copy(task, model, "last_frame")
            rec.last_frame_uri = frame.uri
        rec.stored_at = workflow.now()

    async def _copy(
        self, task: ProviderTask, model: ResolvedModel, kind: Literal["video", "last_frame"]
    ) -> StoredObject:
        rec = self._require_record()
        assert rec.requested_at is not None
        for refresh in range(3):
            content = task.content
            url = (
                (content.video_url if kind == "video" else content.last_frame_url)
                if content
                else None
            )
            if not url:
                raise JobEnded(
                    Outcome.FAILED_INFRA,
                    ErrorInfo(
                        code="OutputMissing",
                        source="pipeline",
                        message=f"provider reported success without a {kind} URL",
                    ),
                )
            try:
                copy = CopyOutputInput(
                    job_id=rec.job_id,
                    route=model.route,
                    url=url,
                    kind=kind,
                    requested_at=rec.requested_at,
                    provider_succeeded_at=task.updated_at,
                )
                return await opts.call("copy_output", copy, StoredObject, opts.COPY)
            except ActivityError as err:
                kind_, info, _ = _error_from(err)
                if kind_ != "OutputUrlExpired":
                    raise JobEnded(Outcome.FAILED_INFRA, info) from None
                if refresh == 2:
                    raise JobEnded(
                        Outcome.FAILED_INFRA,
                        ErrorInfo(
                            code="OutputExpired",
                            source="pipeline",
                            message=f"the {kind} expired before it could be copied: task {task.id} "
                            f"still offers only a refused URL ({info.message})",
                        ),
                    ) from None
                rec.notes.append(f"{kind} URL refused ({info.message}); asking for a fresh one")
                try:
                    task = await self._get(model)
                except JobEnded as ended:
                    raise JobEnded(
                        Outcome.FAILED_INFRA,
                        ErrorInfo(
                            code="OutputExpired",
                            source="pipeline",
                            message=f"the {kind} expired before it could be copied: the provider "
                            f"no longer has task {task.id} ({ended.error.code})",
                        ),
                    ) from None
                self._apply(task)
        raise AssertionError("unreachable")

    async def _finish(self, outcome: Outcome, error: ErrorInfo | None) -> None:
        rec = self._require_record()
        rec.outcome = outcome
        rec.error = error
        rec.finished_at = workflow.now()
        model = self._model
        if model is not None and rec.attempts:
            await self._record_costs(model)
        if self._budget_checked:
            release = BudgetRelease(job_id=rec.job_id)
            await opts.call("release_budget", release, type(None), opts.RECORD)
        state = {
            Outcome.SUCCEEDED: JobState.SUCCEEDED,
            Outcome.REJECTED_MODERATION: JobState.REJECTED,
            Outcome.CANCELLED: JobState.CANCELLED,
        }.get(outcome, JobState.FAILED)
        updates: list[SearchAttributeUpdate[Any]] = [sa.OUTCOME.value_set(outcome.value)]
        if rec.cost is not None:
            key = sa.COST_USD if rec.currency == "USD" else sa.COST_CNY
            updates.append(key.value_set(rec.cost))
        if error is not None:
            updates.append(sa.ERROR_CODE.value_set(error.code[:200]))
        self._publish(updates, flush=False)
        try:
            write = ManifestInput(
                job_id=rec.job_id,
                manifest=build_manifest(rec),
                requested_at=rec.requested_at or rec.finished_at,
            )
            manifest = await opts.call("write_manifest", write, StoredObject, opts.RECORD)
            rec.manifest_uri = manifest.uri
        except ActivityError as err:
            rec.notes.append(f"manifest not written: {_error_from(err)[1].message}")
        self._set_state(state)
        self._flush_search_attributes()
        self._record_metrics()

    def _record_metrics(self) -> None:
        """Job metrics through the workflow meter (not emitted again on replay)."""
        rec = self._require_record()
        meter = workflow.metric_meter()
        tags = {
            "outcome": rec.outcome.value if rec.outcome else "unknown",
            "model": rec.model_alias or "unknown",
            "route": rec.route or "unknown",
        }
        meter.create_counter(names.JOBS, "finished jobs").add(1, tags)
        if rec.requested_at and rec.finished_at:
            meter.create_histogram_float(names.JOB_SECONDS, "request to record", "s").record(
                (rec.finished_at - rec.requested_at).total_seconds(), tags
            )
        billed = [a for a in rec.attempts if a.billed_tokens > 0]
        if billed and rec.cost is not None:
            money = {
                "route": rec.route or "unknown",
                "model": rec.model_alias or "unknown",
                "currency": rec.currency or "unknown",
            }
            meter.create_histogram_float(names.COST, "cost per billed job").record(rec.cost, money)
            meter.create_counter(names.VIDEO_SECONDS, "seconds of video billed").add(
                max(0, rec.duration or 0), {"route": money["route"], "model": money["model"]}
            )
        if rec.provider_created_at and rec.provider_updated_at and rec.outcome == Outcome.SUCCEEDED:
            meter.create_histogram_float(
                names.PROVIDER_RUN_SECONDS, "provider created -> done", "s"
            ).record(
                (rec.provider_updated_at - rec.provider_created_at).total_seconds(),
                {"model": tags["model"]},
            )
        if rec.callbacks_received:
            meter.create_counter(names.CALLBACKS, "callbacks received").add(
                rec.callbacks_received - rec.callbacks_ignored, {"result": "accepted"}
            )
            if rec.callbacks_ignored:
                meter.create_counter(names.CALLBACKS, "callbacks received").add(
                    rec.callbacks_ignored, {"result": "ignored"}
                )

    async def _record_costs(self, model: ResolvedModel) -> None:
        rec = self._require_record()
        total = 0.0
        for attempt in rec.attempts:
            if attempt.provider_task_id is None:
                continue
            billed = attempt.billed_tokens
            latest = attempt.provider_task_id == rec.provider_task_id
            unit = self._unit_price(model)
            amount = cost(billed, unit)
            total += amount
            finished = rec.finished_at or workflow.now()
            entry = LedgerEntry(
                job_id=rec.job_id,
                submit_no=attempt.submit_no,
                route=attempt.route,
                model_alias=attempt.model_alias,
                model_id=attempt.model_id,
                service_tier=rec.request.service_tier,
                resolution=rec.resolution,
                ratio=rec.ratio,
                duration=rec.duration,
                provider_task_id=attempt.provider_task_id,
                tokens=billed,
                estimated_tokens=rec.estimated_tokens,
                billed=billed > 0,
                unit_price=unit,
                currency=model.currency,
                cost=amount,
                outcome=(
                    rec.outcome.value if latest and rec.outcome else attempt.status or "unknown"
                ),
                error_code=attempt.error.code if attempt.error else None,
                error_message=attempt.error.message if attempt.error else None,
                requested_at=rec.requested_at or finished,
                finished_at=finished,
            )
            await opts.call("record_cost", entry, type(None), opts.RECORD)
        rec.cost = round(total, 6)

    async def _on_cancel(self) -> None:
        """Temporal cancel: delete a queued provider task; a running one cannot be cancelled."""
        rec = self._require_record()
        model = self._model
        message = "cancelled by request"
        if model is not None and rec.provider_task_id and rec.state not in TERMINAL_JOB_STATES:
            if rec.provider_status in (None, "queued"):
                ok = await self._cancel_provider_task(model)
                message += (
                    "; provider task deleted while queued"
                    if ok
                    else "; the provider refused the cancel and may still bill the task"
                )
            else:
                message += "; the provider task was running and may still be billed"
        await self._finish(
            Outcome.CANCELLED, ErrorInfo(code="Cancelled", message=message, source="pipeline")
        )

    # ---- helpers ------------------------------------------------------------------------

    def _ignore(self, note: str) -> None:
        rec = self._require_record()
        rec.callbacks_ignored += 1
        if rec.callbacks_ignored <= MAX_IGNORED_NOTES:
            rec.notes.append(note)
        elif rec.callbacks_ignored == MAX_IGNORED_NOTES + 1:
            rec.notes.append("more ignored callbacks: counted in callbacks_ignored, not noted")

    def _unconfirmed(self, task: ProviderTask) -> bool:
        """A terminal status seen only in a callback: not applied until a GET confirms it."""
        return task.terminal and self._confirm_terminal_hints()

    def _confirm_terminal_hints(self) -> bool:
        """Terminal callbacks are hints confirmed by a GET before anything is taken from them
        (earlier runs applied them at once: kept on replay)."""
        return self._v3 or workflow.patched(CONFIRM_PATCH)

    def _require_record(self) -> JobRecord:
        assert self._record is not None
        return self._record

    def _attempt(self) -> Attempt:
        return self._require_record().attempts[-1]

    def _unit_price(self, model: ResolvedModel) -> float:
        rec = self._require_record()
        has_video = any(r.kind.value == "video" for r in rec.request.references)
        unit = model.price_per_million_video_input if has_video else model.price_per_million
        if rec.request.service_tier == "flex":
            unit *= model.flex_factor
        return unit

    def _set_state(self, state: JobState, note: str = "") -> None:
        rec = self._require_record()
        if rec.timeline and not job_moves_forward(rec.state, state):
            return
        rec.state = state
        rec.timeline.append(StateChange(state=state, at=workflow.now(), note=note))
        self._publish([sa.JOB_STATE.value_set(state.value)], flush=state not in QUIET_STATES)

    def _publish(self, updates: list[SearchAttributeUpdate[Any]], *, flush: bool) -> None:
        """Search-attribute changes: held until the next one that flushes (batched mode), or
        upserted at once (histories from before v3, which recorded one upsert each)."""
        if not self._v3:
            workflow.upsert_search_attributes(updates)
            return
        for update in updates:
            self._sa_pending[update.key.name] = update
        if flush:
            self._flush_search_attributes()

    def _flush_search_attributes(self) -> None:
        if self._sa_pending:
            workflow.upsert_search_attributes(list(self._sa_pending.values()))
            self._sa_pending.clear()

    def _apply(self, task: ProviderTask) -> bool:
        """Take a provider status if it moves forward; True when it did."""
        rec = self._require_record()
        if not provider_moves_forward(rec.provider_status, task.status):
            return False
        rec.provider_status = task.status
        rec.provider_created_at = _utc(task.created_at) or rec.provider_created_at
        rec.provider_updated_at = _utc(task.updated_at) or rec.provider_updated_at
        if rec.attempts:
            attempt = self._attempt()
            attempt.status = task.status
            if task.usage and task.status == "succeeded":
                attempt.billed_tokens = task.usage.completion_tokens
        if task.status == "queued":
            self._set_state(JobState.QUEUED)
        elif task.status == "running":
            self._set_state(JobState.RUNNING)
            if task.created_at and task.updated_at:
                workflow.metric_meter().create_histogram_float(
                    names.PROVIDER_QUEUE_SECONDS, "provider created -> running", "s"
                ).record(
                    max(0, task.updated_at - task.created_at),
                    {"model": rec.model_alias or "unknown"},
                )
        if task.status == "succeeded":
            rec.tokens = task.usage.completion_tokens if task.usage else 0
            rec.seed = task.seed
            rec.ratio = task.ratio or rec.ratio
            rec.resolution = task.resolution or rec.resolution
            if task.duration:
                rec.duration = task.duration
            if task.content:
                rec.provider_video_url = task.content.video_url
                rec.provider_last_frame_url = task.content.last_frame_url
        return True
