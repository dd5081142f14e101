"""Signals to other workflows keep a cancel that arrives while they are in flight.

Awaited directly, an external signal loses such a cancel (the SDK takes it off the task and
returns the signal's result: a job cancelled while it asked the capacity gate for a slot once
went on to create a paid task), or, when the cancel and the signal's result reach the worker
together, fails every later workflow task as nondeterministic. A workflow that does nothing but
signal spends nearly all its time with a signal in flight, so each cancel below lands in one;
five of them side by side meet both cases nearly every run (without `signals.signal`, about
half hang and the rest run all their rounds).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from seedance_pipeline.workflows import signals
from tests.workflows.support import WORKFLOW_RUNNER, new_queue

ROUNDS = 400
SIDE_BY_SIDE = 5


@workflow.defn(sandboxed=False)
class SignalLoop:
    """Signals a workflow that does not exist, round after round; counts the rounds."""

    def __init__(self) -> None:
        self.rounds = 0

    @workflow.run
    async def run(self, target: str) -> int:
        for _ in range(ROUNDS):
            if await signals.signal(target, "nothing", None):
                raise RuntimeError(f"{target} does not exist, yet the signal was delivered")
            self.rounds += 1
        return self.rounds

    @workflow.query
    def done(self) -> int:
        return self.rounds


async def _cancel_in_flight(client: Client, queue: str) -> WorkflowHandle[SignalLoop, int]:
    handle = await client.start_workflow(
        SignalLoop.run,
        f"nobody-{uuid.uuid4().hex[:8]}",
        id=f"sig-{uuid.uuid4().hex[:10]}",
        task_queue=queue,
    )
    while await handle.query(SignalLoop.done) < 3:
        await asyncio.sleep(0.02)
    await handle.cancel()
    return handle


async def test_a_cancel_that_arrives_during_a_signal_cancels_the_workflow(client: Client) -> None:
    queue = new_queue()
    async with Worker(
        client, task_queue=queue, workflows=[SignalLoop], workflow_runner=WORKFLOW_RUNNER
    ):
        handles = await asyncio.gather(
            *(_cancel_in_flight(client, queue) for _ in range(SIDE_BY_SIDE))
        )
        for handle in handles:
            with pytest.raises(WorkflowFailureError) as failed:
                await asyncio.wait_for(handle.result(), timeout=30)  # stuck: nondeterminism
            assert isinstance(failed.value.cause, CancelledError)
            assert await handle.query(SignalLoop.done) < ROUNDS
