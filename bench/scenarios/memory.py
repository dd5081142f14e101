"""Worker memory with many jobs in flight, against the floor worker holding as many floors.

The provider is slow (tasks queue for minutes), so started jobs pile up waiting for their
provider task. Jobs are started in steps; after each step the harness waits until every job
has created its task and had its `queued` callback delivered and the worker's CPU has gone
quiet, then reads the worker's resident memory (VmRSS, median of three reads). The floor
worker is measured the same way with floor workflows stopped at the same point (the
activities and signals a waiting job has had so far, counted from one of them).
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace

from bench import bounds, jobs
from bench.floor_workflow import FloorShape
from bench.plan import Plan
from bench.procs import MB, Proc, cpu_seconds, rss_bytes
from bench.report import Figure, ScenarioResult
from bench.stack import BenchStack, EmulatorSpec
from bench.stats import slope

TARGET_MB = 400.0
SLOW_PROVIDER = EmulatorSpec(queue_seconds=1200, run_seconds=300)
"""Tasks stay queued for 20 min: longer than the scenario, so every job is in flight."""


async def _quiet(proc: Proc, ready: Callable[[], Awaitable[bool]], limit: float = 120.0) -> float:
    """Wait until `ready()` and the process used < 10% of a core over the last 0.5 s;
    returns how long that took."""
    start = time.monotonic()
    last = cpu_seconds(proc.pid)
    while time.monotonic() < start + limit:
        await asyncio.sleep(0.5)
        now = cpu_seconds(proc.pid)
        busy = now - last
        last = now
        if busy < 0.05 and await ready():
            return time.monotonic() - start
    raise TimeoutError(f"{proc.name} did not settle within {limit:.0f}s")


async def _rss(proc: Proc) -> float:
    reads = []
    for _ in range(3):
        reads.append(rss_bytes(proc.pid))
        await asyncio.sleep(0.2)
    return statistics.median(reads) / MB


async def _pipeline_curve(
    stack: BenchStack, plan: Plan, spec: EmulatorSpec, timings: dict[str, list[float]]
) -> tuple[dict[int, float], str]:
    tag = jobs.run_tag()
    config = jobs.worker_config(tag, expected_latency=spec.mean_latency)
    worker = stack.start_worker(config)
    settings = jobs.settings_for(config)
    client = await stack.client()

    async def all_waiting(n: int) -> bool:
        stats = await jobs.emulator_stats(stack.emulator_url)
        creates = stats.get("request_totals", {}).get("create", 0)
        delivered = stats.get("callbacks", {}).get("succeeded", 0)
        return bool(creates >= n and delivered >= n)

    curve: dict[int, float] = {}
    started = 0
    ids: list[str] = []
    for step in plan.memory_steps:
        if step > started:
            batch = jobs.job_ids(tag, step - started, offset=started)
            t0 = time.monotonic()
            await jobs.start_jobs(client, settings, tag, batch)
            timings["pipeline_start_s"].append(round(time.monotonic() - t0, 2))
            ids += batch
            started = step
        settle = await _quiet(worker, functools.partial(all_waiting, started))
        timings["pipeline_settle_s"].append(round(settle, 2))
        curve[step] = await _rss(worker)
    sample = ids[len(ids) // 2] if ids else ""
    stack.stop_worker()
    return curve, sample


async def _floor_curve(
    stack: BenchStack, plan: Plan, shape: FloorShape, sent: int, timings: dict[str, list[float]]
) -> dict[int, float]:
    tag = jobs.run_tag()
    queue = f"bench-floormem-{tag}"
    worker = stack.start_floor_worker(queue)
    client = await stack.client()

    async def always() -> bool:
        return True

    curve: dict[int, float] = {}
    started = 0
    for step in plan.memory_steps:
        if step > started:
            batch = jobs.job_ids(f"{tag}-floor", step - started, offset=started)
            t0 = time.monotonic()
            await jobs.start_floor(client, queue, shape, batch, signals_to_send=sent)
            timings["floor_start_s"].append(round(time.monotonic() - t0, 2))
            started = step
        timings["floor_settle_s"].append(round(await _quiet(worker, always), 2))
        curve[step] = await _rss(worker)
    stack.stop_floor_worker()
    return curve


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    stack.start_emulator(SLOW_PROVIDER)
    timings: dict[str, list[float]] = defaultdict(list)
    pipe, sample_job = await _pipeline_curve(stack, plan, SLOW_PROVIDER, timings)
    client = await stack.client()
    so_far = await jobs.job_shape(client, sample_job)
    # A waiting floor has run the same activities and seen the same signals; it waits for one
    # more signal that never comes, as the job waits for a terminal callback.
    shape = replace(so_far.floor(), signals=so_far.signals + 1, after=0)
    floor = await _floor_curve(stack, plan, shape, so_far.signals, timings)

    target = plan.memory_target_jobs
    steps = [s for s in plan.memory_steps if 0 < s <= target]
    per100 = slope(steps, [pipe[s] for s in steps]) * 100
    floor_per100 = slope(steps, [floor[s] for s in steps]) * 100
    result.figures += [
        Figure(
            f"worker RSS with {target} jobs in flight",
            pipe[target],
            "MB",
            floor[target],
            f"floor worker, {target} floors waiting",
            target=f"< {TARGET_MB:.0f} MB",
            met=pipe[target] < TARGET_MB,
        ),
        Figure(
            "growth per 100 extra jobs in flight",
            per100,
            "MB",
            floor_per100,
            "floor worker",
            target="reported",
            met=None,
        ),
        Figure(
            "worker RSS with no job (after start)",
            pipe[0],
            "MB",
            floor[0],
            "floor worker",
            target="reported",
            met=None,
        ),
    ]
    beyond = [s for s in plan.memory_steps if s > target]
    result.details.update(
        {
            "pipeline_rss_mb": pipe,
            "floor_rss_mb": floor,
            "pipeline_mb_per_100_jobs": per100,
            "floor_mb_per_100_jobs": floor_per100,
            "waiting_job_shape": {
                "activities": so_far.activity_types,
                "signals": so_far.signals,
                "timers": so_far.timers,
                "history_events": so_far.events,
            },
            "floor_shape": {"before": shape.before, "signals": shape.signals, "after": 0},
            "emulator": SLOW_PROVIDER.argv(),
            "step_timings": dict(timings),
        }
    )
    beyond_text = ""
    if beyond:
        last = beyond[-1]
        beyond_text = (
            f" Past {target}: {pipe[last]:.0f} MB at {last} jobs "
            f"({pipe[last] - pipe[target]:+.1f} MB for {last - target} more; the SDK's "
            "sticky workflow cache holds 1,000 runs by default)."
        )
    result.bounds += bounds.memory(result.details, target)
    result.how += [
        f"`python -m bench --only memory`: jobs started in steps "
        f"{', '.join(str(s) for s in plan.memory_steps)} against an emulator whose tasks stay "
        f"queued for {SLOW_PROVIDER.queue_seconds / 60:.0f} min "
        f"(`{' '.join(SLOW_PROVIDER.argv())}`), callbacks on, model expected latency set to "
        f"{SLOW_PROVIDER.mean_latency:g} s (no repair poll falls inside the measurement).",
        "After each step: wait until the emulator has every task and has delivered every "
        "`queued` callback and the worker used < 5% CPU over 1 s, then VmRSS of `python "
        "worker.py` from /proc (median of 3 reads 0.2 s apart).",
        f"Growth per 100 = least-squares slope over the steps 1..{target}, x100.{beyond_text}",
        f"Floor baseline: `bench/floor_worker.py` (same SDK runtime and slots) holding the "
        f"same number of floor workflows, each after {shape.before} no-op activities and "
        f"{so_far.signals} signal(s), waiting for one more (the shape of a waiting job, counted "
        f"from its history: {so_far.activity_types}, {so_far.signals} signals).",
    ]
