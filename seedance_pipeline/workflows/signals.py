"""Signals to other workflows (job to gate, gate to job, follower to gate), without losing a
cancel.

The SDK protects a sent signal from its sender's cancellation, and both ways it does so hurt a
job: a workflow cancel that arrives while the signal is in flight is taken off the task and the
await returns the signal's result, so the job carries on as if never cancelled (one cancelled
while asking the capacity gate for a slot went on to create a paid task); and a cancel that
arrives in the same workflow task as the signal's result makes the SDK cancel a signal that is
already done, which fails every workflow task after it as nondeterministic (a stuck job).

So the signal is sent from a task of its own that no cancel reaches, and the sender awaits it
through a shield: a cancel raises in the sender at once, as at any other await, while the
signal goes on (the gate sees it, then the release the cancel sends after it).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import FailureError


async def signal(workflow_id: str, name: str, message: object) -> bool:
    """Signal `workflow_id`; False when it is gone (closed or never started)."""
    return await asyncio.shield(asyncio.ensure_future(_send(workflow_id, name, message)))


async def _send(workflow_id: str, name: str, message: object) -> bool:
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(name, message)
    except FailureError:
        return False
    return True
