"""Signal a job's workflow and say what became of the signal.

The signal RPC answers NOT_FOUND both for a workflow that never existed and for one that has
closed ("workflow execution already completed"). The provider retries terminal callbacks, and a
finished job legitimately receives late ones, so the two must be told apart: `describe()` does.
A missing namespace is also NOT_FOUND; that is our misconfiguration, not the caller's, so it is
reported as unavailable (503, the provider retries) rather than as an unknown job.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

import structlog
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.models import ProviderCallback

SIGNAL_NAME = "provider_callback"

_CLOSED = frozenset(
    {
        WorkflowExecutionStatus.COMPLETED,
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)
_NAMESPACE_MISSING = "NamespaceNotFoundFailure"
_ATTEMPTS = 2  # a second try only when the job was closed and is running again (a new run)

log = structlog.get_logger(__name__)


class Delivery(StrEnum):
    SIGNALLED = "signalled"
    FINISHED = "finished"
    UNKNOWN_JOB = "unknown_job"
    REFUSED = "refused"
    """Temporal refused the payload itself (INVALID_ARGUMENT, e.g. a blob size limit)."""
    UNAVAILABLE = "unavailable"


class _Gone(Exception):
    """describe(): no such workflow."""


async def deliver(
    client: Client, job_id: str, callback: ProviderCallback, *, rpc_timeout: timedelta
) -> Delivery:
    """Signal `provider_callback` on the workflow whose ID is `job_id`.

    Each RPC gets `rpc_timeout`, but the SDK retries UNAVAILABLE beyond it: callers must bound
    the whole call themselves (the handler does, to stay inside the provider's 5 s).
    """
    handle: WorkflowHandle[object, object] = client.get_workflow_handle(job_id)
    for _ in range(_ATTEMPTS):
        try:
            await handle.signal(SIGNAL_NAME, callback, rpc_timeout=rpc_timeout)
            return Delivery.SIGNALLED
        except RPCError as err:
            if not _workflow_missing(err):
                return _classify(err)
        try:
            status = await _status(handle, rpc_timeout)
        except _Gone:
            return Delivery.UNKNOWN_JOB
        except RPCError as err:
            return _classify(err)
        if status in _CLOSED:
            return Delivery.FINISHED
        log.info("workflow_reopened_between_calls", job_id=job_id, status=str(status))
    return Delivery.UNAVAILABLE


async def _status(
    handle: WorkflowHandle[object, object], rpc_timeout: timedelta
) -> WorkflowExecutionStatus | None:
    try:
        described = await handle.describe(rpc_timeout=rpc_timeout)
    except RPCError as err:
        if _workflow_missing(err):
            raise _Gone from None
        raise
    return described.status


def _workflow_missing(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND and not _namespace_missing(err)


def _namespace_missing(err: RPCError) -> bool:
    details = err.grpc_status.details if err.grpc_status is not None else []
    return any(d.type_url.endswith(_NAMESPACE_MISSING) for d in details)


def _classify(err: RPCError) -> Delivery:
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        log.warning("signal_refused", code=err.status.name, error=err.message)
        return Delivery.REFUSED
    # Everything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, a missing namespace,
    # auth, INTERNAL...) is on our side of the wire: answer 503 so the provider tries again.
    log.warning("signal_failed", code=err.status.name, error=err.message)
    return Delivery.UNAVAILABLE
