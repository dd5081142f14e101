"""Throughput: jobs per minute through the whole pipeline against the floor workflow.

N jobs (1 MB videos, provider latency 1-3 s, callbacks on) are started at once and the rate is
N / (last workflow close - first start). The workflow closes after the manifest, the last object
it stores, so this is "first start to last stored object". The floor (same number of activities
and signals, counted from a real job's history, doing nothing) runs the same N on the same
server in the same run; floor and pipeline alternate when there are several repetitions.

The main figure runs on the run's Temporal dev server (in-memory SQLite, the CLI's default):
there the machine's two cores are the limit, so the ratio to the floor measures what our
workflow and activities cost. A second, smaller pass starts a dev server on a SQLite *file*,
as `make up` does; on this machine that one waits on the disk (fsync), and both its figures
are reported too.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bench import bounds, jobs, machine
from bench.plan import Plan
from bench.profile import Profile
from bench.report import Figure, ScenarioResult
from bench.stack import BenchStack, EmulatorSpec, cores_used
from bench.stats import median, ratio
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.core.settings import Settings

TARGET_RATIO = 0.70
TARGET_PER_MINUTE = 300.0
BREAKER_OFF = "SEEDANCE_BREAKER__ENABLED"
TIMING_SAMPLE = 100
"""Histories read after the run for per-activity queue and run times."""


@dataclass
class Pass:
    """One server's measurement: rates per repetition and what explains them."""

    label: str
    jobs: int
    pipeline: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    to_last_video: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return median(self.pipeline)

    @property
    def floor_rate(self) -> float:
        return median(self.floor)


def provider_spec(plan: Plan) -> EmulatorSpec:
    """The plan's provider latency (1-3 s), videos padded to the plan's size (1 MB)."""
    spec = plan.throughput_provider
    return dataclasses.replace(spec, min_video_bytes=plan.throughput_video_bytes)


async def measure(
    stack: BenchStack,
    plan: Plan,
    label: str,
    n: int,
    reps: int,
    profile: bool,
    extra_env: dict[str, str] | None = None,
) -> Pass:
    """Warm up, count a real job's shape, then alternate floor and pipeline runs of `n`."""
    spec = provider_spec(plan)
    stack.start_emulator(spec)
    tag = jobs.run_tag()
    config = jobs.worker_config(tag, expected_latency=spec.mean_latency, extra_env=extra_env)
    worker = stack.start_worker(config)
    settings = jobs.settings_for(config)
    client = await stack.client()
    out = Pass(label=label, jobs=n)

    warm = jobs.job_ids(f"{tag}-warm", plan.warmup_jobs)
    await jobs.start_jobs(client, settings, f"{tag}-warm", warm)
    warm_records = await jobs.results(client, warm, plan.job_timeout)
    bad = [r.job_id for r in warm_records if r.outcome != Outcome.SUCCEEDED]
    if bad:
        raise RuntimeError(f"warm-up jobs did not succeed: {bad}")
    shape = await jobs.job_shape(client, warm[-1])
    floor_shape = shape.floor()
    floor_queue = f"bench-floor-{tag}"
    stack.start_floor_worker(floor_queue)
    floor_warm = jobs.job_ids(f"{tag}-floorwarm", plan.warmup_jobs)
    await jobs.start_floor(client, floor_queue, floor_shape, floor_warm)
    await jobs.floor_results(client, floor_warm, plan.job_timeout)
    floor_events = (await client.get_workflow_handle(floor_warm[-1]).describe()).history_length

    cpu: dict[str, list[dict[str, float]]] = {"floor": [], "pipeline": []}
    profile_summary = None
    pipe_ids: list[str] = []
    for rep in range(reps):
        ids = jobs.job_ids(f"{tag}-floor{rep}", n)
        cpu0 = stack.cpu_seconds()
        first = await jobs.start_floor(client, floor_queue, floor_shape, ids)
        await jobs.floor_results(client, ids, plan.job_timeout)
        last = max(await jobs.close_times(client, ids))
        out.floor.append(n / (last - first) * 60)
        cpu["floor"].append(cores_used(cpu0, stack.cpu_seconds(), last - first))
        await asyncio.sleep(1)  # let the server's background work settle between runs

        ids = jobs.job_ids(f"{tag}-pipe{rep}", n)
        cpu0 = stack.cpu_seconds()
        first = await jobs.start_jobs(client, settings, f"{tag}-pipe{rep}", ids)
        records = await jobs.results(client, ids, plan.job_timeout)
        last = max(await jobs.close_times(client, ids))
        out.pipeline.append(n / (last - first) * 60)
        cpu["pipeline"].append(cores_used(cpu0, stack.cpu_seconds(), last - first))
        out.failures += [r.job_id for r in records if r.outcome != Outcome.SUCCEEDED]
        stored = [jobs.file_path(r.video_uri).stat().st_mtime for r in records if r.video_uri]
        if stored:
            out.to_last_video.append(n / (max(stored) - first) * 60)
        pipe_ids += ids
        await asyncio.sleep(1)
    if profile:
        # An extra run, not counted: py-spy reading the worker's memory costs CPU on the same
        # cores, and a sampled run counted among the rates pulled their median down.
        sampler = Profile(worker.pid, stack.data / f"profile-worker-{label}.txt")
        ids = jobs.job_ids(f"{tag}-profiled", n)
        await jobs.start_jobs(client, settings, f"{tag}-profiled", ids)
        records = await jobs.results(client, ids, plan.job_timeout)
        profile_summary = sampler.stop()
        out.failures += [r.job_id for r in records if r.outcome != Outcome.SUCCEEDED]
    stack.stop_floor_worker()
    stack.stop_worker()

    out.details = {
        "jobs_total": n * reps,
        "timing_sample": min(TIMING_SAMPLE, len(pipe_ids)),
        "pipeline_rates": out.pipeline,
        "floor_rates": out.floor,
        "pipeline_rates_to_last_video": out.to_last_video,
        "failed_jobs": out.failures,
        "cores_used": cpu,
        "job_shape": {
            "local_activities": shape.local_activities,
            "activities_before_wait": shape.activities_before_wait,
            "signals": shape.signals,
            "activities_after_wait": shape.activities_after_wait,
            "activity_types": shape.activity_types,
            "timers": shape.timers,
            "history_events": shape.events,
        },
        "floor_history_events": floor_events,
        "activity_timings_s": await jobs.activity_timings(client, pipe_ids[:TIMING_SAMPLE]),
        "other_workflows": await jobs.history_events(
            client,
            f"TaskQueue IN ('{config.task_queue}', '{config.task_queue}-entities') "
            "AND WorkflowType != 'GenerationWorkflow'",
        ),
        "worker_profile": profile_summary,
        "emulator": spec.argv(),
    }
    return out


def _figures(p: Pass, suffix: str) -> list[Figure]:
    ok = not p.failures
    return [
        Figure(
            f"jobs per minute (start to last stored object){suffix}",
            p.rate,
            "jobs/min",
            p.floor_rate,
            "floor workflow",
            target=f">= {TARGET_RATIO:.0%} of floor",
            met=ok and ratio(p.rate, p.floor_rate) >= TARGET_RATIO,
            ratio_label="of floor",
        ),
        Figure(
            f"jobs per minute, absolute{suffix}",
            p.rate,
            "jobs/min",
            p.floor_rate,
            "floor workflow",
            target=f">= {TARGET_PER_MINUTE:.0f} jobs/min on this machine",
            met=ok and p.rate >= TARGET_PER_MINUTE,
            ratio_label="of floor",
        ),
    ]


def _how(p: Pass, plan: Plan, reps: int) -> str:
    d = p.details
    shape = d["job_shape"]
    return (
        f"{p.label}: {p.jobs} jobs per run, {reps} run(s) each of floor and pipeline, "
        f"alternating; medians reported (pipeline "
        f"{', '.join(f'{r:.0f}' for r in p.pipeline)} jobs/min; floor "
        f"{', '.join(f'{r:.0f}' for r in p.floor)} jobs/min; to the last video instead of the "
        f"last manifest: {', '.join(f'{r:.0f}' for r in p.to_last_video)}). "
        f"{plan.warmup_jobs} warm-up jobs each, not counted. Failed jobs: {len(p.failures)}. "
        f"History events per job: pipeline {shape['history_events']}, floor "
        f"{d['floor_history_events']}."
    )


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    main = await measure(
        stack,
        plan,
        "in-memory dev server",
        plan.throughput_jobs,
        plan.throughput_reps,
        plan.profile,
    )
    result.figures += _figures(main, "")
    result.details["in_memory"] = main.details
    file_pass = None
    if plan.throughput_file_jobs:
        file_stack = BenchStack(stack.data / "sqlite-file", temporal_db="file")
        try:
            file_stack.start()
            file_pass = await measure(
                file_stack, plan, "SQLite-file dev server", plan.throughput_file_jobs, 1, False
            )
        finally:
            file_stack.stop()
        result.figures += _figures(file_pass, ", Temporal on a SQLite file (as `make up`)")
        result.details["sqlite_file"] = file_pass.details

    diag = None
    if plan.throughput_diag_jobs and "breaker" in Settings.model_fields:
        diag = await measure(
            stack,
            plan,
            "breaker off (diagnosis)",
            plan.throughput_diag_jobs,
            1,
            False,
            extra_env={BREAKER_OFF: "false"},
        )
        result.details["breaker_off"] = diag.details
    cores = machine.describe()["cores"]
    result.bounds += bounds.throughput(main.details, main.rate, main.floor_rate, cores)
    if diag is not None:
        result.bounds.append(
            bounds.breaker_off(main.details, main.rate, diag.details, diag.rate, diag.floor_rate)
        )
    if file_pass is not None:
        result.bounds.append(
            bounds.sqlite_file(file_pass.details, file_pass.rate, file_pass.floor_rate, cores)
        )
    shape = main.details["job_shape"]
    spec = provider_spec(plan)
    result.how += [
        f"`python -m bench --only throughput`: jobs started at once (at most 32 start calls "
        f"in flight) through the real worker (`python worker.py`, its own process), callbacks "
        f"on via the webhook receiver; emulator latency 1-3 s (`{' '.join(spec.argv())}`), "
        "1 MB videos to the file store. Rate = jobs / (last workflow close - first start) x 60; "
        "a workflow closes after writing its manifest, its last stored object.",
        f"Floor: `bench/floor_workflow.py`, {shape.get('local_activities', 0)} no-op local "
        f"activities, {shape['activities_before_wait']} no-op "
        f"activities, wait for {shape['signals']} signals (sent by the harness right after each "
        f"start, as the webhook would), {shape['activities_after_wait']} no-op activities; the "
        f"shape is counted from a real job's history in the same run "
        f"({shape['activity_types']}, {shape['signals']} signals). Its own worker process "
        "(`bench/floor_worker.py`, same SDK runtime and slots), same server.",
        _how(main, plan, plan.throughput_reps),
    ]
    if diag is not None:
        result.how.append(
            _how(diag, plan, 1)
            + f" Diagnosis only (not a target): the same server with `{BREAKER_OFF}=false`, to "
            "measure what the per-model breaker costs; its floor matches its smaller shape."
        )
    if file_pass is not None:
        result.how.append(
            _how(file_pass, plan, 1)
            + " A separate dev server started with `--db-filename` and the WAL pragmas (as "
            "`make up`), same harness; fewer jobs to keep the run short."
        )
