"""WorkerChecksWorkflow: the worker answers `doctor` for itself.

One activity on the job queue, run by whichever worker polls it, with that worker's settings
and environment. The CLI starts it under a fresh ID with short timeouts, after checking that
a worker polls the queue at all, so a missing worker is a one-line answer, never a wait.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.checks import WorkerChecksInput, WorkerReport
    from seedance_pipeline.workflows.activity_stubs import worker_checks

CHECKS_TIMEOUT = timedelta(seconds=25)
"""Route probes (10 s each at most), a storage write, a ledger read, a receiver GET (5 s)."""


@workflow.defn
class WorkerChecksWorkflow:
    @workflow.run
    async def run(self, data: WorkerChecksInput) -> WorkerReport:
        return await workflow.execute_activity(
            worker_checks,
            data,
            start_to_close_timeout=CHECKS_TIMEOUT,
            schedule_to_close_timeout=CHECKS_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )
