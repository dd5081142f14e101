"""The worker: settings -> clients -> activities -> Temporal workers. Wiring only.

Two task queues: the job queue (workflows and most activities) and the submit queue
(`create_task` only), whose server-enforced rate limit keeps every worker together under the
provider's RPM. Prometheus metrics (SDK + project) are served on WORKER_METRICS_PORT (9464).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import structlog
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from seedance_pipeline.activities.app_webhooks import AppWebhookActivities
from seedance_pipeline.activities.capacity import CapacityActivities, GateAsker, GateReleaser
from seedance_pipeline.activities.directory import JobDirectoryActivities
from seedance_pipeline.activities.followers import FollowerActivities
from seedance_pipeline.activities.health import HealthActivities
from seedance_pipeline.activities.ledger import LedgerActivities
from seedance_pipeline.activities.provider import ProviderActivities
from seedance_pipeline.activities.reconcile import ReconcileActivities
from seedance_pipeline.activities.references import ReferenceActivities
from seedance_pipeline.activities.storage import StorageActivities
from seedance_pipeline.activities.worker_checks import (
    WorkerCheckActivities,
    ledger_check,
    storage_check,
)
from seedance_pipeline.adapters.host_map import transport_for
from seedance_pipeline.adapters.ledger import open_ledger_when_up
from seedance_pipeline.adapters.ledger_schema import Ledger
from seedance_pipeline.adapters.object_store import ObjectStore, open_store
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.clients.reconcile_schedule import ensure_reconcile_schedules
from seedance_pipeline.clients.temporal_client import TemporalUnavailable, connect
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import metric_names as names
from seedance_pipeline.core.settings import ConfigError, Settings
from seedance_pipeline.observability import metrics
from seedance_pipeline.observability.logging import configure_logging, scrub_bytes, secret_values
from seedance_pipeline.workflows.capacity_gate import CapacityGateWorkflow
from seedance_pipeline.workflows.follow_task import TaskFollowerWorkflow
from seedance_pipeline.workflows.generation import GenerationWorkflow
from seedance_pipeline.workflows.model_health import ModelHealthWorkflow
from seedance_pipeline.workflows.reconcile import ReconcileWorkflow
from seedance_pipeline.workflows.worker_checks import WorkerChecksWorkflow

log = structlog.get_logger("worker")

WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("seedance_pipeline.workflows")
)
"""The sandbox re-imports a workflow's module for every new workflow instance; for
`workflows.generation` that was a fifth of the worker's CPU at a few hundred jobs a minute
(docs/benchmarks.md). Our workflow modules hold no mutable globals, so they are imported once.
The price is that calls made from them are no longer trapped at run time; the replay tests
(`tests/replay`) run the same workflows under the full default sandbox, which still traps them."""


@contextlib.asynccontextmanager
async def running_workers(
    client: Client, settings: Settings, *, identity: str | None = None
) -> AsyncIterator[list[Worker]]:
    """Start the job and submit workers for `settings`; stop them on exit (tests use this)."""
    timeout = httpx.Timeout(settings.retries.http_timeout_seconds, connect=10.0)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    transport = transport_for(settings.storage.resolve_hosts, limits=limits)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport) as http:
        store = open_store(
            settings.storage.uri,
            s3_endpoint_url=settings.storage.s3_endpoint_url,
            s3_region=settings.storage.s3_region,
        )
        ledger = await asyncio.to_thread(open_ledger_when_up, settings.ledger.url)
        acts = activities(client, settings, http, store, ledger, identity or "")
        tq = settings.temporal
        rate = tq.submit_rate_per_second or None
        workers = [
            Worker(
                client,
                task_queue=tq.task_queue,
                workflows=[
                    GenerationWorkflow,
                    ModelHealthWorkflow,
                    WorkerChecksWorkflow,
                    ReconcileWorkflow,
                    TaskFollowerWorkflow,
                ],
                workflow_runner=WORKFLOW_RUNNER,
                activities=acts.job_queue,
                max_concurrent_activities=200,
                max_cached_workflows=tq.max_cached_workflows,
                graceful_shutdown_timeout=timedelta(seconds=10),
            ),
            Worker(  # breakers and capacity gates: never queued behind job tasks
                client,
                task_queue=tq.entity_queue,
                workflows=[ModelHealthWorkflow, CapacityGateWorkflow],
                activities=acts.entity_queue,
                workflow_runner=WORKFLOW_RUNNER,
            ),
            Worker(
                client,
                task_queue=tq.submit_task_queue,
                activities=acts.submit_queue,
                max_concurrent_activities=50,
                max_task_queue_activities_per_second=rate,
            ),
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            await keep_reconcile_scheduled(client, settings)
            yield workers
        finally:
            # In the order the queues depend on each other: the job worker, whose workflow
            # task in flight may be waiting on choose_model, a local activity that waits on a
            # breaker's update; then the submit worker (its creates ask the capacity gates);
            # the entity worker, which answers both, last. Stopped together, the job worker
            # waited out its grace period and the task's timeout (about 21 s) for an answer
            # the stopped entity worker could not give.
            job_worker, entity_worker, submit_worker = workers
            for worker in (job_worker, submit_worker, entity_worker):
                with contextlib.suppress(Exception):
                    await worker.shutdown()
            await asyncio.gather(*tasks, return_exceptions=True)
            ledger.close()


async def keep_reconcile_scheduled(client: Client, settings: Settings) -> None:
    """The hourly reconcile per route; a server that refuses schedules is logged, not fatal
    (jobs still run; `starter.py reconcile` still works by hand)."""
    try:
        await ensure_reconcile_schedules(client, settings)
    except RPCError as exc:
        log.warning("reconcile.schedule_failed", error=exc.message, status=exc.status.name)


@dataclass(frozen=True)
class Activities:
    job_queue: list[Callable[..., Any]]
    submit_queue: list[Callable[..., Any]]
    """Only `create_task`: its queue's rate limit is shared by every worker."""
    entity_queue: list[Callable[..., Any]]
    """What the shared entities (capacity gates) call themselves."""

    @property
    def all(self) -> list[Callable[..., Any]]:
        return self.job_queue + self.submit_queue + self.entity_queue


def activities(
    client: Client,
    settings: Settings,
    http: httpx.AsyncClient,
    store: ObjectStore,
    ledger: Ledger,
    identity: str,
) -> Activities:
    """Every activity implementation, one per stub of `workflows.activity_stubs` (a test checks
    that the names match exactly)."""
    provider_client = ProviderClient(
        http, metrics.provider_call, redact=lambda: secret_values(settings)
    )
    provider = ProviderActivities(
        provider_client,
        settings,
        ask_gate=GateAsker(client).ask,
        release_slot=GateReleaser(client).release,
    )
    capacity = CapacityActivities(client, provider_client, settings)
    checks = WorkerCheckActivities(client, settings, http, provider_client, store, ledger)
    reconcile = ReconcileActivities(client, settings, ledger, provider_client, store)
    storage = StorageActivities(http, store, settings)
    references = ReferenceActivities(http, settings)
    directory = JobDirectoryActivities(client)
    health = HealthActivities(client, settings, identity)
    ledger_acts = LedgerActivities(
        ledger,
        settings.budgets,
        {name: t.budgets for name, t in settings.api.tenants.items() if t.budgets},
    )
    app_webhooks = AppWebhookActivities(http, settings)
    followers = FollowerActivities(client, settings)
    job_queue: list[Callable[..., Any]] = [
        provider.resolve_model,
        provider.get_task,
        provider.find_tasks,
        provider.cancel_task,
        references.check_references,
        directory.task_owners,
        health.choose_model,
        health.report_health,
        storage.copy_output,
        storage.write_manifest,
        ledger_acts.record_cost,
        ledger_acts.check_budget,
        ledger_acts.release_budget,
        app_webhooks.deliver_app_webhook,
        checks.worker_checks,
        reconcile.reconcile_provider,
        reconcile.reconcile_invoice,
        ledger_acts.claim_task,
        ledger_acts.find_claims,
        ledger_acts.record_unattributed,
        followers.start_task_follower,
    ]
    return Activities(
        job_queue=job_queue,
        submit_queue=[provider.create_task],
        entity_queue=[capacity.check_capacity_holders],
    )


# The SDK's default buckets (50..10000) would put every sub-second latency and every cost
# under 1 in the first bucket.
HISTOGRAM_BUCKETS: dict[str, list[float]] = {
    names.PROVIDER_CALL_SECONDS: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    names.JOB_SECONDS: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
    names.PROVIDER_QUEUE_SECONDS: [5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    names.PROVIDER_RUN_SECONDS: [5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    names.COMPLETION_TO_STORAGE_SECONDS: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400],
    names.COST: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 50, 100, 500],
}


def metrics_runtime(host: str, port: int) -> Runtime:
    """A runtime serving SDK and project metrics on one Prometheus endpoint."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{host}:{port}", histogram_bucket_overrides=HISTOGRAM_BUCKETS
            )
        )
    )


class StartFailed(RuntimeError):
    """The worker cannot work with these settings; the message says which piece and why."""


async def ready_to_work(settings: Settings) -> None:
    """Refuse to poll with storage or a ledger that does not work: every paid job would fail
    at its copy or its cost record, after the provider billed it."""
    store = open_store(
        settings.storage.uri,
        s3_endpoint_url=settings.storage.s3_endpoint_url,
        s3_region=settings.storage.s3_region,
    )
    verdicts = [await storage_check(store, settings.storage.uri)]
    try:  # a ledger server that is restarting gets a while to come back (chaos: Postgres)
        ledger = await asyncio.to_thread(open_ledger_when_up, settings.ledger.url)
    except Exception as exc:  # any driver or file error: the worker cannot record costs
        raise StartFailed(f"ledger: cannot open ({type(exc).__name__}: {exc})") from None
    try:
        verdicts.append(await ledger_check(ledger, settings.ledger.url))
    finally:
        ledger.close()
    for check in verdicts:
        if not check.ok:
            raise StartFailed(f"{check.name}: {check.detail}; {check.fix}")


def _say(message: str, settings: Settings | None = None) -> None:
    """One plain line on stderr (what `make up` shows of a worker that died), secrets out."""
    if settings is not None:
        message = scrub_bytes(message.encode(), secret_values(settings)).decode()
    print(f"worker: {message}", file=sys.stderr, flush=True)  # noqa: T201


async def _connect_patiently(runtime: Runtime, wait_seconds: float) -> Client:
    """Connect, retrying for `wait_seconds` while Temporal is not up yet (it may be starting
    or restarting beside this worker); the last failure is the one reported."""
    give_up = time.monotonic() + wait_seconds
    while True:
        try:
            return await connect(runtime=runtime)
        except TemporalUnavailable:
            if time.monotonic() >= give_up:
                raise
            log.info("worker.waiting_for_temporal", retry_in_seconds=1)
            await asyncio.sleep(1)


async def serve() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        _say(str(exc))
        return 2
    configure_logging(settings)
    host = os.environ.get("WORKER_METRICS_HOST", "127.0.0.1")
    try:
        port = int(os.environ.get("WORKER_METRICS_PORT", "9464"))
        runtime = metrics_runtime(host, port)
    except (ValueError, RuntimeError) as exc:
        _say(f"cannot serve metrics on {host}:{os.environ.get('WORKER_METRICS_PORT')}: {exc}")
        return 2
    try:
        await ready_to_work(settings)
    except StartFailed as exc:
        _say(f"refusing to start: {exc}", settings)
        return 2
    try:
        client = await _connect_patiently(runtime, settings.temporal.connect_wait_seconds)
    except TemporalUnavailable as exc:
        _say(str(exc))
        return 3
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running_workers(client, settings):
            log.info(
                "worker.started",
                identity=client.identity,
                task_queue=settings.temporal.task_queue,
                submit_queue=settings.temporal.submit_task_queue,
                health_queue=settings.temporal.entity_queue,
                metrics_port=port,
                callbacks=settings.callbacks.enabled,
            )
            if settings.capacity.enabled and settings.temporal.submit_rate_per_second:
                log.warning(
                    "worker.submit_rate_with_capacity_gate",
                    fix="set temporal.submit_rate_per_second = 0: the capacity gate paces "
                    "creates, and held-back creates count against the queue's rate",
                )
            await stop.wait()
            log.info("worker.stopping")
    except Exception as exc:  # the last word in the log must say why, in one line
        log.exception("worker.failed")
        _say(f"stopped: {type(exc).__name__}: {exc}", settings)
        return 1
    return 0


def main() -> None:
    code = asyncio.run(serve())
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the SDK's native runtime threads have been seen to abort
    # with "PyGILState_Release" during finalisation, turning a clean stop into a crash code.
    os._exit(code)


if __name__ == "__main__":
    main()
