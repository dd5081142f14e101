"""`starter.py doctor`: this shell's view of the stack, and the worker's own checks beside it.

The CLI checks what only it can: which Temporal it reaches (and whether that is the stack
`make up` recorded), the search attributes, whether a worker polls the job queue, and whether
its model table matches the worker's. Everything else (keys, storage, ledger, callbacks,
queues) the worker answers for itself through `WorkerChecksWorkflow`: the CLI's shell has no
keys and other settings, and judging it said false things about a healthy stack.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import TimeoutError as TimeoutTemporalError

from seedance_pipeline.adapters.task_queues import live_pollers
from seedance_pipeline.clients.failures import root_message
from seedance_pipeline.clients.pollers import no_worker_message
from seedance_pipeline.clients.target import Target, stack_notes
from seedance_pipeline.clients.temporal_setup import missing_search_attributes
from seedance_pipeline.core.checks import (
    Check,
    WorkerChecksInput,
    WorkerReport,
    fail,
    models_digest,
    ok,
    warn,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.workflows.worker_checks import CHECKS_TIMEOUT, WorkerChecksWorkflow

ANSWER_TIMEOUT = CHECKS_TIMEOUT + timedelta(seconds=5)


@dataclass
class DoctorReport:
    cli: list[Check] = field(default_factory=list)
    worker: WorkerReport | None = None

    @property
    def checks(self) -> list[Check]:
        return self.cli + (self.worker.checks if self.worker else [])

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cli": [c.model_dump(mode="json") for c in self.cli],
            "worker": self.worker.model_dump(mode="json") if self.worker else None,
        }


async def doctor(client: Client, target: Target, settings: Settings) -> DoctorReport:
    report = DoctorReport()
    report.cli.append(ok("config", "this shell's settings load"))
    report.cli.append(ok("temporal", f"{target.address} answers (from {target.source})"))
    report.cli.append(await _record_check(client, target))
    missing = await missing_search_attributes(client)
    report.cli.append(
        ok("search attributes", "all registered")
        if not missing
        else fail(
            "search attributes",
            f"missing: {', '.join(missing)}",
            "run `starter.py setup` (the embedded stack registers them at start)",
        )
    )
    queue = settings.temporal.task_queue
    polling = await live_pollers(client, queue, ("workflow", "activity"))
    if not polling:
        log = target.record.log_of("worker") if target.record else None
        report.cli.append(fail("worker", no_worker_message(queue, target.address, log)))
        return report
    now = datetime.now(UTC)
    seen = {p.identity: (now - p.last_access).total_seconds() for p in polling if p.last_access}
    names = ", ".join(f"{name} (seen {age:.0f} s ago)" for name, age in sorted(seen.items()))
    report.cli.append(ok("worker", f"{len(seen)} polling {queue}: {names}"))
    log = target.record.log_of("worker") if target.record else None
    answer = await _ask_worker(client, queue, log)
    if isinstance(answer, Check):
        report.cli.append(answer)
        return report
    report.worker = answer
    report.cli.append(_same_models(settings, answer))
    return report


async def _record_check(client: Client, target: Target) -> Check:
    notes = [n for n in await stack_notes(client, target) if n.startswith("warning: ")]
    if notes:
        return warn("stack record", notes[0].removeprefix("warning: "), "run `make up`")
    if target.record is None:
        return ok("stack record", f"none ({target.record_file}): not an embedded stack")
    return ok("stack record", f"{target.record_file}: the stack `make up` started")


async def _ask_worker(client: Client, queue: str, log: str | None) -> WorkerReport | Check:
    try:
        handle = await client.start_workflow(
            WorkerChecksWorkflow.run,
            WorkerChecksInput(requested_by=client.identity),
            id=f"doctor-{uuid.uuid4().hex[:12]}",
            task_queue=queue,
            execution_timeout=ANSWER_TIMEOUT,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        return await asyncio.wait_for(handle.result(), ANSWER_TIMEOUT.total_seconds())
    except (TimeoutError, WorkflowFailureError) as exc:
        if isinstance(exc, TimeoutError) or isinstance(exc.cause, TimeoutTemporalError):
            return fail(
                "worker checks",
                f"no worker on {queue} answered within {ANSWER_TIMEOUT.total_seconds():.0f} s: "
                "it has stopped or is overloaded",
                f"see the worker's log{f' ({log})' if log else ''}; `make up` restarts it",
            )
        return fail(
            "worker checks",
            f"the worker's checks failed: {root_message(exc.cause)}",
            "see the worker's log",
        )


def _same_models(settings: Settings, report: WorkerReport) -> Check:
    if report.models_digest == models_digest(settings):
        return ok("model table", "this shell validates requests with the worker's model table")
    return warn(
        "model table",
        "this shell's model table (IDs, limits, prices) differs from the worker's: requests "
        "are validated and estimated here with other limits than the worker applies",
        "use the same config (SEEDANCE_CONFIG, SEEDANCE_MODELS__*) in this shell",
    )
