"""Submit throughput through the HTTP API against direct Temporal starts, in the same run.

N jobs are submitted with at most 32 requests in flight, first as direct starts
(`clients.jobs.start_job`, what the CLI does), then through `POST /v1/jobs` of a real API
process (`python -m seedance_pipeline.api`, its own process, typed async client, one unique
`Idempotency-Key` per job), alternating when there are several repetitions. Both start on
the same server and the same kind of task queue; no worker polls it, so the figure is the
submit path alone (validation, auth, start, HTTP and JSON), not the pipeline. The jobs are
terminated afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid

from temporalio.service import RPCError

from bench import jobs
from bench.plan import Plan
from bench.procs import http_ok
from bench.report import Figure, ScenarioResult
from bench.stack import BenchStack
from bench.stats import median, ratio
from seedance_pipeline.api.keys import hash_key, new_key
from seedance_pipeline.api_client import AsyncSeedanceClient, JobCreate
from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.stack.ports import free_port

TARGET_RATIO = 0.5
IN_FLIGHT = 32
TENANT = "bench"


async def _direct(stack: BenchStack, queue: str, tag: str, n: int) -> float:
    client = await stack.client()
    settings = load_settings(temporal={"task_queue": queue})
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with gate:
            await start_job(
                client,
                settings,
                jobs.request(tag, i),
                job_id=f"{TENANT}:{tag}-{i:05d}",
                tenant=TENANT,
            )

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.monotonic() - started)


async def _through_api(url: str, key: str, tag: str, n: int) -> float:
    gate = asyncio.Semaphore(IN_FLIGHT)
    async with AsyncSeedanceClient(url, key, timeout=60) as api:

        async def one(i: int) -> None:
            async with gate:
                body = JobCreate(prompt=jobs.request(tag, i).prompt, model=jobs.MODEL)
                await api.create_job(body, idempotency_key=f"{tag}-{i:05d}")

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.monotonic() - started)


async def _terminate(stack: BenchStack, queue: str) -> int:
    """Terminate every job the scenario started (visibility lags a start: list until none
    is left, a few rounds at most)."""
    client = await stack.client()
    query = f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"
    gate = asyncio.Semaphore(IN_FLIGHT)
    done: set[str] = set()

    async def one(job_id: str) -> None:
        async with gate:
            with contextlib.suppress(RPCError):  # already closed
                await client.get_workflow_handle(job_id).terminate("bench: submit measured")
            done.add(job_id)

    for _ in range(10):
        ids = [e.id async for e in client.list_workflows(query) if e.id not in done]
        if not ids:
            break
        await asyncio.gather(*(one(j) for j in ids))
        await asyncio.sleep(0.5)
    return len(done)


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    tag = jobs.run_tag()
    queue = f"bench-api-submit-{tag}"
    key = new_key()
    port = free_port()
    env = stack.env()
    env.update(
        {
            "API_PORT": str(port),
            "SEEDANCE_TEMPORAL__TASK_QUEUE": queue,
            f"SEEDANCE_API__TENANTS__{TENANT.upper()}__KEY_HASHES_ENV": "BENCH_API_KEY_HASHES",
            "BENCH_API_KEY_HASHES": hash_key(key),
            "LOG_LEVEL": "WARNING",
        }
    )
    argv = [sys.executable, "-m", "seedance_pipeline.api", "--port", str(port)]
    api = stack._proc("api", argv, env)
    url = f"http://127.0.0.1:{port}"
    try:
        api.wait_ready(lambda: http_ok(f"{url}/healthz"))
        n = plan.api_submit_jobs
        warm = max(1, plan.warmup_jobs)
        await _direct(stack, queue, f"{tag}-warm-d", warm)
        await _through_api(url, key, f"{tag}-warm-a", warm)
        direct: list[float] = []
        through: list[float] = []
        for rep in range(plan.api_submit_reps):
            direct.append(await _direct(stack, queue, f"{tag}-d{rep}-{uuid.uuid4().hex[:4]}", n))
            through.append(await _through_api(url, key, f"{tag}-a{rep}", n))
        terminated = await _terminate(stack, queue)
    finally:
        api.stop()
    value, baseline = median(through), median(direct)
    result.figures.append(
        Figure(
            "submits per second through POST /v1/jobs",
            value,
            "jobs/s",
            baseline,
            "direct Temporal starts (clients.jobs.start_job)",
            target=f">= {TARGET_RATIO:.0%} of direct starts",
            met=ratio(value, baseline) >= TARGET_RATIO,
            ratio_label="of direct starts",
        )
    )
    result.details = {
        "jobs_per_run": n,
        "reps": plan.api_submit_reps,
        "api_rates": through,
        "direct_rates": direct,
        "in_flight": IN_FLIGHT,
        "terminated_after": terminated,
    }
    result.how += [
        f"`python -m bench --only api_submit`: {n} jobs per run, {plan.api_submit_reps} run(s) "
        f"each, direct then API, at most {IN_FLIGHT} requests in flight; medians reported "
        f"(API {', '.join(f'{r:.0f}' for r in through)} jobs/s; direct "
        f"{', '.join(f'{r:.0f}' for r in direct)} jobs/s). {warm} warm-up job(s) each.",
        "API: its own uvicorn process (`python -m seedance_pipeline.api`), the typed async "
        "client, a unique Idempotency-Key per job: per job one HTTP request, key check, "
        "request validation and the start (conflict policy FAIL, so only a replay costs a "
        "second RPC, the describe that compares the body fingerprint in the memo).",
        "Direct: `clients.jobs.start_job` from the harness (validation and the start), the "
        "CLI's path. Same server, same unpolled task queue; the jobs are terminated after.",
    ]
    result.bounds.append(
        "Both paths wait on the same start RPC; the API adds HTTP and JSON on both sides, "
        "the key hash and the request validation, in one process with one event loop."
    )
