"""GenerationWorkflow: one durable workflow per video generation job (workflow ID = job ID).

    resolve -> references -> breaker -> [budget -> submit -> wait]* -> store -> finish
               (retries on the same model, then fallback: `attempts`)

This class is the shell: the handlers (query, callback signal, operator messages) and `run`,
which calls the phases in the order of the job's diagram. The phases are plain functions in
the sibling modules; everything they learn goes into the job book, the one record the query,
the result, the manifest and the Web UI read. A job that does not succeed ends its workflow as
failed (the outcome as the failure type, the record in its details), so the Web UI's status and
its Failures filter tell the truth; a cancelled job ends cancelled.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from seedance_pipeline.core.capacity import CapacityGranted
    from seedance_pipeline.core.error_types import JOB_FINISHED
    from seedance_pipeline.core.models import (
        ErrorInfo,
        ExtendRequest,
        GenerationInput,
        JobRecord,
        Outcome,
        ProviderCallback,
    )
    from seedance_pipeline.workflows.capacity_gate import GRANTED_SIGNAL
    from seedance_pipeline.workflows.generation import (
        attempts,
        capacity,
        finish,
        metrics,
        routing,
        store,
    )
    from seedance_pipeline.workflows.generation.book import JobBook
    from seedance_pipeline.workflows.generation.ending import JobEnded
    from seedance_pipeline.workflows.generation.inbox import Inbox, take_callback
    from seedance_pipeline.workflows.generation.job import Job
    from seedance_pipeline.workflows.payloads import one

MAX_EXTENSION_MINUTES = 24 * 60


@workflow.defn
class GenerationWorkflow:
    @workflow.init
    def __init__(self, inp: Any) -> None:
        # Validated here rather than decoded by the SDK: a job started past the starter (Temporal
        # CLI, Web UI) with a malformed input would fail its first workflow task forever; now
        # `run` fails the workflow with the reason. The book exists before `run`, so a query or
        # an operator's message that arrives with the first workflow task sees the job.
        parsed, self._problem = parse_input(inp)
        info = workflow.info()
        self._book = JobBook.open(
            parsed,
            info.workflow_id,
            run=info.run_id,
            clock=workflow.now,
            upsert=workflow.upsert_search_attributes,
        )
        self._job = Job(parsed, self._book) if parsed is not None else None
        self._inbox = self._job.inbox if self._job is not None else Inbox()

    # ---- messages -----------------------------------------------------------------------

    @workflow.query
    def status(self) -> JobRecord:
        return self._book.record

    @workflow.signal
    def provider_callback(self, *payload: Any) -> None:
        """A provider callback relayed by the webhook receiver (an unsigned hint).

        Decoded here, not by the SDK: a typed one-argument handler turns a signal sent with no
        or two arguments into a TypeError that fails every workflow task of the job.
        """
        applied = take_callback(
            self._book, self._inbox, one(payload, ProviderCallback), len(payload)
        )
        if applied is not None and applied.status == "running":
            metrics.provider_started(self._book.record, applied)

    @workflow.signal(name=GRANTED_SIGNAL)
    def capacity_granted(self, *payload: Any) -> None:
        """The account's gate, to a job it held back: a slot is this job's until its provider
        task ends."""
        message = one(payload, CapacityGranted)
        if message is not None and self._job is not None:
            capacity.granted(self._job, message)

    @workflow.signal
    def discard_outputs(self, *_: Any) -> None:
        """Operator (before a cancel): a task followed after the job is billed and recorded,
        but its outputs are not stored."""
        self._inbox.discard = True

    @workflow.signal
    def poke(self, *_: Any) -> None:
        """Operator: look at the provider now (a callback was lost). Arguments are ignored."""
        self._inbox.poked = True

    @workflow.update
    def extend(self, request: ExtendRequest) -> JobRecord:
        """Operator: move this job's deadlines later (a slow provider day, a flex job)."""
        self._inbox.extension += timedelta(minutes=request.minutes)
        rec = self._book.record
        rec.deadline_extension_minutes += request.minutes
        self._book.note(f"deadline extended by {request.minutes} min ({request.reason})")
        return rec

    @extend.validator
    def _validate_extend(self, request: ExtendRequest) -> None:
        rec = self._book.record
        if rec.outcome is not None or self._book.finished:  # decided, though maybe not closed
            how = rec.outcome.value if rec.outcome else rec.state.value
            raise ApplicationError(
                f"job {rec.job_id} already finished ({how})",
                how,
                type=JOB_FINISHED,
                non_retryable=True,
            )
        total = rec.deadline_extension_minutes + request.minutes
        if total > MAX_EXTENSION_MINUTES:
            raise ValueError(
                f"extensions would total {total} min; the maximum is {MAX_EXTENSION_MINUTES} "
                "min (the provider expires tasks anyway)"
            )

    # ---- run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: Any) -> JobRecord:
        job = self._job
        if job is None:
            error = ErrorInfo(
                code="RequestInvalid",
                message=f"invalid job input: {self._problem}",
                source="validation",
            )
            self._book.close(Outcome.FAILED_INPUT, error)
            self._book.final_state()
            raise job_failure(self._book.record)
        try:
            await generate(job)
        except JobEnded as ended:
            await finish.close(job, ended.outcome, ended.error)
        except asyncio.CancelledError:
            await finish.cancelled(job)
            raise
        if self._book.record.outcome != Outcome.SUCCEEDED:
            raise job_failure(self._book.record)
        return self._book.record


async def generate(job: Job) -> None:
    """The job's phases in order; an early end raises JobEnded."""
    model = await routing.resolve(job)
    await routing.check_references(job, model)
    model, probe = await routing.route_by_breaker(job, model)
    done = await attempts.until_success(job, model, probe)
    # The breaker hears of the provider's success while the outputs are copied: the report
    # does not depend on the copy (a failed copy is ours, not the model's), and it no longer
    # waits behind it (the report batcher lingers for a moment).
    reported = asyncio.ensure_future(routing.report(job, done.model, ok=True, probe=done.probe))
    try:
        await store.outputs(job, done.model, done.task)
    finally:
        await reported
    await finish.close(job, Outcome.SUCCEEDED, None)


def job_failure(record: JobRecord) -> ApplicationError:
    """The workflow's failure for a job that did not succeed: outcome as type, record as details."""
    outcome = record.outcome or Outcome.FAILED_INFRA
    what = f"{record.error.code}: {record.error.message}" if record.error else "no error recorded"
    return ApplicationError(
        f"job {record.job_id} ended {outcome.value} ({what})",
        record,
        type=outcome.value,
        non_retryable=True,
    )


def parse_input(raw: Any) -> tuple[GenerationInput | None, str]:
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
