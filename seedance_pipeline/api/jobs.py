"""The API's jobs on Temporal: create with an idempotency key, read a tenant's own records,
list, cancel.

Tenancy is the `Tenant` search attribute, set with the start: every read describes the
workflow first and answers 404 unless the attribute names the caller (another tenant's job
and no job look the same). Job IDs carry the tenant (`acme:order-17`), so two tenants using
the same idempotency key never meet.

Idempotency: the key makes the job ID; the start uses conflict policy USE_EXISTING, so two
racing requests with one key start one workflow. The body's fingerprint (`JobCreate
.fingerprint()`, a SHA-256 of the parsed body) is kept in the workflow's memo with the start:
after a start that found an existing job, the memo is compared and a different body is a 422.
A memo rather than the workflow input: `describe()` returns it in the one call that also
checks the tenant, the input can be rebuilt from the request only when the request's defaults
never change (they may: the config's default model), and webhook URL, priority and metadata
are part of "the same body" too.

Reading a record never needs a worker: a closed job's record is in its history (the result,
or the details of the failure the workflow ends with); a running job answers the `status`
query, and when no worker answers in time the record is rebuilt from the start event and the
search attributes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.core import search_attributes as sa
from seedance_pipeline.core.api_schema import IDEMPOTENCY_KEY_MAX, JobCreate, JobSummary
from seedance_pipeline.core.app_webhooks import job_path, links_for
from seedance_pipeline.core.capacity import BATCH_PRIORITY, INTERACTIVE_PRIORITY
from seedance_pipeline.core.models import (
    GenerationInput,
    GenerationRequest,
    JobLinks,
    JobRecord,
    JobState,
    Outcome,
)
from seedance_pipeline.core.settings import Settings

FINGERPRINT_MEMO = "idempotency_sha256"
BATCH_SIZE_MEMO = "batch_size"
QUERY_TIMEOUT = timedelta(seconds=5)
_LITERAL_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_FILTER_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class KeyReused(Exception):
    """The idempotency key names a job created from another body."""


@dataclass(frozen=True)
class Created:
    job_id: str
    replayed: bool
    description: WorkflowExecutionDescription | None
    """Read back for a replay only (a new job needs no extra RPC)."""


def idempotency_job_id(tenant: str, key: str) -> str:
    """`tenant:key` when the key is a plain token, else `tenant::<sha256>` (a plain key cannot
    contain `:`, so the two forms never collide)."""
    if _LITERAL_KEY.fullmatch(key):
        return f"{tenant}:{key}"
    return f"{tenant}::{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def key_problem(key: str) -> str | None:
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        return f"must be 1-{IDEMPOTENCY_KEY_MAX} characters"
    if not key.isprintable() or not key.isascii():
        return "must be printable ASCII"
    return None


def new_job_id(tenant: str) -> str:
    return f"{tenant}:job-{uuid.uuid4().hex[:20]}"


class JobsService:
    def __init__(self, client: Client, settings: Settings, cursor_secret: bytes = b"") -> None:
        self.client = client
        self.settings = settings
        self._cursor_secret = cursor_secret

    # ---- create ------------------------------------------------------------------------

    async def create(
        self,
        tenant: str,
        body: JobCreate,
        *,
        job_id: str,
        fingerprint: str,
        batch: str | None = None,
        memo: Mapping[str, Any] | None = None,
    ) -> Created:
        """Start the job, or find the one this ID already names (then compare bodies).

        The start fails when the ID exists (conflict policy FAIL, reuse REJECT_DUPLICATE), so
        a new job costs one RPC and only a replay reads the memo back; two racing requests
        with one key start one workflow, and the loser compares bodies like any replay."""
        started = await start_job(
            self.client,
            self.settings,
            body.generation_request(),
            job_id=job_id,
            tenant=tenant,
            webhook_url=body.webhook_url,
            metadata=body.metadata,
            # A single request is someone waiting; a batch's rows go after it (and take turns
            # with other batches: the batch is their fairness key).
            priority=body.priority or (BATCH_PRIORITY if batch else INTERACTIVE_PRIORITY),
            batch=batch,
            memo={**(memo or {}), FINGERPRINT_MEMO: fingerprint},
            conflict=WorkflowIDConflictPolicy.FAIL,
        )
        if not started.existed:
            return Created(job_id=job_id, replayed=False, description=None)
        desc = await self.client.get_workflow_handle(job_id).describe()
        found = await desc.memo()
        if found.get(FINGERPRINT_MEMO) != fingerprint or _tenant(desc) != tenant:
            raise KeyReused(job_id)
        return Created(job_id=job_id, replayed=True, description=desc)

    # ---- read --------------------------------------------------------------------------

    async def describe(self, tenant: str, job_id: str) -> WorkflowExecutionDescription | None:
        """The job's description when it belongs to `tenant`, else None."""
        try:
            desc = await self.client.get_workflow_handle(job_id).describe()
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                return None
            raise
        return desc if _tenant(desc) == tenant else None

    async def record(self, desc: WorkflowExecutionDescription) -> JobRecord:
        """The job record, from the worker if it answers, else from history (see module)."""
        if desc.status != WorkflowExecutionStatus.RUNNING:
            closed = await self._closed_record(desc)
            if closed is not None:
                return closed
        # Running, or closed without the record in history (cancelled, terminated): ask.
        handle = self.client.get_workflow_handle(desc.id, run_id=desc.run_id)
        try:
            found = await handle.query("status", result_type=JobRecord, rpc_timeout=QUERY_TIMEOUT)
        except (TimeoutError, RPCError):
            found = None
        if isinstance(found, JobRecord):
            return found
        return await self._record_from_start(desc)

    async def _closed_record(self, desc: WorkflowExecutionDescription) -> JobRecord | None:
        handle = self.client.get_workflow_handle(desc.id, run_id=desc.run_id, result_type=JobRecord)
        try:
            result = await handle.result(rpc_timeout=QUERY_TIMEOUT)
        except WorkflowFailureError as exc:
            # A job that did not succeed ends its workflow failed, the record in the details.
            cause: BaseException | None = exc.cause
            while cause is not None and not isinstance(cause, ApplicationError):
                cause = getattr(cause, "cause", None)
            if isinstance(cause, ApplicationError) and cause.details:
                try:
                    return JobRecord.model_validate(cause.details[0])
                except ValueError:
                    return None
            return None
        except RPCError:
            return None
        return result if isinstance(result, JobRecord) else None

    async def _record_from_start(self, desc: WorkflowExecutionDescription) -> JobRecord:
        """What history and visibility know without a worker: the input and the attributes."""
        handle = self.client.get_workflow_handle(desc.id, run_id=desc.run_id)
        job: GenerationInput | None = None
        async for event in handle.fetch_history_events(page_size=1):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                (job,) = await self.client.data_converter.decode(payloads, [GenerationInput])
            break
        attrs = desc.typed_search_attributes
        request = job.request if job else GenerationRequest(prompt="")
        state = attrs.get(sa.JOB_STATE) or JobState.RECEIVED.value
        outcome = attrs.get(sa.OUTCOME)
        cost = attrs.get(sa.COST_USD)
        return JobRecord(
            job_id=desc.id,
            state=JobState(state) if state in JobState._value2member_map_ else JobState.RECEIVED,
            outcome=Outcome(outcome) if outcome and outcome in Outcome._value2member_map_ else None,
            request=request,
            candidate=job.candidate if job else 0,
            tenant=job.tenant if job else _tenant(desc),
            metadata=job.metadata if job else {},
            model_alias=attrs.get(sa.MODEL),
            model_id=attrs.get(sa.MODEL_ID),
            route=attrs.get(sa.ROUTE),
            provider_task_id=attrs.get(sa.PROVIDER_TASK_ID),
            cost=cost if cost is not None else attrs.get(sa.COST_CNY),
            currency="USD" if cost is not None else ("CNY" if attrs.get(sa.COST_CNY) else None),
            requested_at=desc.start_time,
            finished_at=desc.close_time,
            notes=["record rebuilt from history: no worker answered the status query"],
        )

    # ---- list --------------------------------------------------------------------------

    async def list(
        self,
        tenant: str,
        *,
        outcome: str | None = None,
        state: str | None = None,
        model: str | None = None,
        batch: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobSummary], str | None]:
        query = list_query(
            tenant,
            outcome=outcome,
            state=state,
            model=model,
            batch=batch,
            created_after=created_after,
            created_before=created_before,
        )
        token = decode_cursor(cursor, self._cursor_secret, query) if cursor else None
        iterator = self.client.list_workflows(query, page_size=limit, next_page_token=token)
        await iterator.fetch_next_page(page_size=limit)
        rows = [summary_of(execution) for execution in iterator.current_page or []]
        next_token = iterator.next_page_token
        if not next_token:
            return rows, None
        return rows, encode_cursor(next_token, self._cursor_secret, query)


def list_query(
    tenant: str,
    *,
    outcome: str | None = None,
    state: str | None = None,
    model: str | None = None,
    batch: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> str:
    """A visibility query over one tenant's jobs; every value is checked against a strict
    pattern before it is quoted, so a filter cannot add a clause."""
    parts = ["WorkflowType = 'GenerationWorkflow'", f"{sa.TENANT.name} = '{_checked(tenant)}'"]
    for key, value in (
        (sa.OUTCOME.name, outcome),
        (sa.JOB_STATE.name, state),
        (sa.MODEL.name, model),
        (sa.BATCH.name, batch),
    ):
        if value:
            parts.append(f"{key} = '{_checked(value)}'")
    if created_after:
        parts.append(f"StartTime >= '{created_after.isoformat()}'")
    if created_before:
        parts.append(f"StartTime < '{created_before.isoformat()}'")
    return " AND ".join(parts)


def _checked(value: str) -> str:
    if not _FILTER_VALUE.fullmatch(value):
        raise ValueError(f"filter value {value[:40]!r}: letters, digits and . _ : - only")
    return value


def encode_cursor(token: bytes, secret: bytes, query: str) -> str:
    """Temporal's page token, signed with the query it belongs to: a cursor from another
    tenant, another filter or no cursor at all is refused here, never sent to Temporal."""
    body = base64.urlsafe_b64encode(token).decode().rstrip("=")
    return f"{body}.{_cursor_mac(body, secret, query)}"


def decode_cursor(cursor: str, secret: bytes, query: str) -> bytes:
    body, _, mac = cursor.partition(".")
    if not body or not hmac.compare_digest(mac, _cursor_mac(body, secret, query)):
        raise ValueError("not a cursor this API returned for these filters")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor this API returned for these filters") from None


def _cursor_mac(body: str, secret: bytes, query: str) -> str:
    digest = hmac.new(secret, f"{query}\n{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def summary_of(execution: WorkflowExecution) -> JobSummary:
    attrs = execution.typed_search_attributes
    usd = attrs.get(sa.COST_USD)
    cny = attrs.get(sa.COST_CNY)
    path = job_path(execution.id)
    return JobSummary(
        job_id=execution.id,
        state=attrs.get(sa.JOB_STATE),
        outcome=attrs.get(sa.OUTCOME),
        model=attrs.get(sa.MODEL),
        model_id=attrs.get(sa.MODEL_ID),
        route=attrs.get(sa.ROUTE),
        cost=usd if usd is not None else cny,
        currency="USD" if usd is not None else ("CNY" if cny is not None else None),
        error_code=attrs.get(sa.ERROR_CODE),
        batch=attrs.get(sa.BATCH),
        created_at=execution.start_time,
        closed_at=execution.close_time,
        execution_status=execution.status.name if execution.status else None,
        links=JobLinks(job=path),
    )


def record_links(record: JobRecord) -> JobLinks:
    return links_for(record)


def _tenant(desc: WorkflowExecution) -> str | None:
    return desc.typed_search_attributes.get(sa.TENANT)
