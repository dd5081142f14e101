"""`deliver()`'s rarer branches, which a healthy dev server cannot be made to produce on demand:
Temporal refusing a payload, throttling, and a job that reopens between signal and describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from seedance_pipeline.core.models import ProviderCallback, ProviderTask
from seedance_pipeline.webhook.delivery import Delivery, deliver
from tests.webhook.support import task_body

CALLBACK = ProviderCallback(
    submit_no=0, task=ProviderTask.model_validate(task_body()), received_at=datetime.now(UTC)
)
GONE = RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")


class ScriptedHandle:
    """Answers signal() and describe() from scripts; None means success."""

    def __init__(self, signals: list[RPCError | None], statuses: list[Any]) -> None:
        self.signals = signals
        self.statuses = statuses
        self.signal_calls = 0

    async def signal(self, name: str, arg: Any, *, rpc_timeout: timedelta) -> None:
        assert name == "provider_callback"
        assert arg is CALLBACK
        self.signal_calls += 1
        outcome = self.signals.pop(0)
        if outcome is not None:
            raise outcome

    async def describe(self, *, rpc_timeout: timedelta) -> Any:
        status = self.statuses.pop(0)
        if isinstance(status, RPCError):
            raise status
        return SimpleNamespace(status=status)


class ScriptedClient:
    def __init__(self, handle: ScriptedHandle) -> None:
        self.handle = handle

    def get_workflow_handle(self, workflow_id: str) -> ScriptedHandle:
        return self.handle


async def run(handle: ScriptedHandle) -> Delivery:
    client = cast(Client, ScriptedClient(handle))
    return await deliver(client, "job-1", CALLBACK, rpc_timeout=timedelta(seconds=1))


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (RPCStatusCode.INVALID_ARGUMENT, Delivery.REFUSED),
        (RPCStatusCode.RESOURCE_EXHAUSTED, Delivery.UNAVAILABLE),
        (RPCStatusCode.DEADLINE_EXCEEDED, Delivery.UNAVAILABLE),
        (RPCStatusCode.PERMISSION_DENIED, Delivery.UNAVAILABLE),
    ],
)
async def test_signal_errors_other_than_not_found(code: RPCStatusCode, expected: Delivery) -> None:
    assert await run(ScriptedHandle([RPCError("x", code, b"")], [])) == expected


async def test_job_reopened_between_signal_and_describe_is_signalled_again() -> None:
    handle = ScriptedHandle([GONE, None], [WorkflowExecutionStatus.RUNNING])
    assert await run(handle) == Delivery.SIGNALLED
    assert handle.signal_calls == 2


async def test_job_that_keeps_reopening_is_unavailable_not_a_loop() -> None:
    handle = ScriptedHandle([GONE, GONE], [WorkflowExecutionStatus.RUNNING] * 2)
    assert await run(handle) == Delivery.UNAVAILABLE
    assert handle.signal_calls == 2


async def test_describe_failing_after_not_found_is_unavailable() -> None:
    down = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    assert await run(ScriptedHandle([GONE], [down])) == Delivery.UNAVAILABLE


@pytest.mark.parametrize(
    "status", [WorkflowExecutionStatus.TIMED_OUT, WorkflowExecutionStatus.FAILED]
)
async def test_closed_statuses_not_reachable_in_the_live_tests(
    status: WorkflowExecutionStatus,
) -> None:
    assert await run(ScriptedHandle([GONE], [status])) == Delivery.FINISHED
