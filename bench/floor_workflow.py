"""The floor baseline: a workflow with a real job's shape and none of its work.

A real job runs its local activities (the routing lookups), schedules a number of activities,
waits for the provider's callbacks (signals) in the middle, then schedules the rest.
`FloorWorkflow` does exactly that with activities that return at once, so its rate on the
same server in the same run is what Temporal, the SDK and this machine allow for that shape;
the pipeline's rate divided by it is our own overhead.
The shape is counted from a real job's history at run time (`bench.shape`), so the floor
follows the workflow when it changes. This module imports only temporalio and the stdlib
(it is loaded inside the workflow sandbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

FLOOR_WORKFLOW = "BenchFloorWorkflow"


@dataclass(frozen=True)
class FloorShape:
    """Local activities first, activities before the wait, signals awaited, activities after."""

    before: int
    signals: int
    after: int
    local: int = 0
    """Local activities run first (a job's routing lookups): each one a marker in history."""


@activity.defn(name="bench_floor_noop")
async def floor_noop(step: int) -> int:
    """Does nothing; exists so the floor pays for scheduling, dispatch and completion."""
    return step


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.signal
    def hint(self) -> None:
        """Stands in for a provider callback relayed by the webhook receiver."""
        self._signals += 1

    @workflow.run
    async def run(self, shape: FloorShape) -> int:
        for step in range(shape.local):
            await workflow.execute_local_activity(
                floor_noop, step, start_to_close_timeout=timedelta(seconds=60)
            )
        for step in range(shape.before):
            await self._noop(step)
        await workflow.wait_condition(lambda: self._signals >= shape.signals)
        for step in range(shape.after):
            await self._noop(shape.before + step)
        return self._signals

    @staticmethod
    async def _noop(step: int) -> int:
        return await workflow.execute_activity(
            floor_noop, step, start_to_close_timeout=timedelta(seconds=60)
        )
