"""Worker memory with thousands of jobs waiting for capacity (issue 16, "Scale").

One worker, the published enterprise limits, provider tasks that run for an hour: twelve jobs
hold the model's slots (10 running, 2 queued at the provider) and every other job waits at the
gate, on a condition, with no timer but its wait bound and no activity. Jobs are started in
steps; after each, the harness waits until the gate counts every job of the step as waiting and
the worker's CPU has gone quiet, then reads its resident memory (median of three reads). The
sticky cache (`temporal.max_cached_workflows`) bounds how many of those waiting runs the worker
keeps in memory; past it, the curve must be flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import httpx
from temporalio.client import Client

from bench import jobs
from bench.capacity_runs import ENTERPRISE, Burst, query_gate, request, worker_env
from bench.procs import MB, cpu_seconds, rss_bytes
from bench.stack import BenchStack, EmulatorSpec
from bench.stats import slope
from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.core.capacity import gate_id

HOLD_PROVIDER = EmulatorSpec(queue_seconds=1.0, run_seconds=3600, unlimited=False)
"""Published enterprise limits, tasks that outlast the scenario: the slots stay held."""
SETTLE_LIMIT_SECONDS = 300.0


async def _settled(stack: BenchStack, client: Client, scope: str, waiting: int) -> float:
    """Until the gate counts `waiting` waiters and the worker used < 10% of a core for 0.5 s;
    returns how long that took."""
    worker = stack.workers["worker"]
    start = time.monotonic()
    last = cpu_seconds(worker.pid)
    while time.monotonic() < start + SETTLE_LIMIT_SECONDS:
        await asyncio.sleep(0.5)
        now = cpu_seconds(worker.pid)
        busy, last = now - last, now
        if busy < 0.05:
            gate = await query_gate(client, scope) if waiting else None
            if not waiting or (gate is not None and gate.waiting() >= waiting):
                return time.monotonic() - start
    raise TimeoutError(f"{waiting} jobs not all waiting within {SETTLE_LIMIT_SECONDS:.0f}s")


async def _rss(stack: BenchStack) -> float:
    reads = []
    for _ in range(3):
        reads.append(rss_bytes(stack.workers["worker"].pid))
        await asyncio.sleep(0.2)
    return sorted(reads)[1] / MB


async def _sticky_cache(stack: BenchStack) -> dict[str, float]:
    """The worker's own `temporal_sticky_cache_size` gauges (Prometheus), per task queue."""
    port = stack.worker_metrics_port("worker")
    out: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in text.splitlines():
        if line.startswith("temporal_sticky_cache_size{"):
            labels, value = line.rsplit(" ", 1)
            queue = labels.split('task_queue="', 1)[-1].split('"', 1)[0]
            out[queue] = float(value)
    return out


async def _gate_events(client: Client, scope: str) -> int:
    """Events in the gate's current run (it continues as new when Temporal suggests)."""
    desc = await client.get_workflow_handle(gate_id("byteplus", scope)).describe()
    return desc.history_length


async def _terminate(client: Client, ids: Sequence[str], concurrency: int = 32) -> None:
    """Leave the server as the scenario found it: no job (or gate) waits on after it."""
    gate = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str) -> None:
        async with gate:
            with contextlib.suppress(Exception):  # already closed
                await client.get_workflow_handle(workflow_id).terminate("bench: scale measured")

    await asyncio.gather(*(one(i) for i in ids))


def growth_per_thousand(curve: dict[int, float], low: int, high: int) -> float:
    """Least-squares MB per 1,000 waiting jobs over the steps in [low, high]."""
    steps = [s for s in curve if low <= s <= high]
    return slope(steps, [curve[s] for s in steps]) * 1000


async def run(stack: BenchStack, steps: Sequence[int], cache: int) -> dict[str, Any]:
    burst = Burst("scale", HOLD_PROVIDER, ENTERPRISE, gate=True, jobs=0, workers=1)
    tag = jobs.run_tag()
    env = worker_env(burst) | {"SEEDANCE_TEMPORAL__MAX_CACHED_WORKFLOWS": str(cache)}
    config = jobs.worker_config(tag, extra_env=env)
    stack.start_emulator(HOLD_PROVIDER)
    stack.start_worker(config)
    client = await stack.client()
    scope = f"bench-{tag}"
    holders = ENTERPRISE.concurrency + 2  # the shipped headroom_per_model
    settings = jobs.settings_for(config)
    curve: dict[int, float] = {}
    timings: dict[str, list[float]] = {"start_s": [], "settle_s": []}
    diag: dict[str, list[Any]] = {"gate_events": [], "sticky_cache": []}
    ids: list[str] = []
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        job_id = f"cap-{tag}-wait-{i:05d}"
        async with gate:
            await start_job(client, settings, request(job_id, i), job_id=job_id, batch=tag)
        ids.append(job_id)

    try:
        for step in steps:
            t0 = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(len(ids), step)))
            timings["start_s"].append(round(time.monotonic() - t0, 1))
            waiting = max(0, step - holders)
            timings["settle_s"].append(round(await _settled(stack, client, scope, waiting), 1))
            curve[step] = await _rss(stack)
            if waiting:
                diag["gate_events"].append(await _gate_events(client, scope))
                diag["sticky_cache"].append(await _sticky_cache(stack))
        final = await query_gate(client, scope)
    finally:
        stack.stop_worker()
        await _terminate(client, [*ids, gate_id("byteplus", scope)])
    return {
        "rss_mb": curve,
        "cache": cache,
        "holders": holders,
        "gate_waiting": final.waiting() if final else None,
        "gate_holders": len(final.holders) if final else None,
        "gate_state_kb": len(final.model_dump_json()) / 1024 if final else 0.0,
        "below_cache_mb_per_1000": growth_per_thousand(curve, 0, cache),
        "past_cache_mb_per_1000": growth_per_thousand(curve, cache, max(steps)),
        "timings": timings,
        **diag,
        "emulator": HOLD_PROVIDER.argv(),
    }
