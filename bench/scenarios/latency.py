"""Completion to storage and API budget, for callbacks on, polling only and the naive client.

Completion to storage = the stored video file's mtime (the moment the object was committed;
the file store writes a temp file and renames it) minus the moment the provider's task became
`succeeded` (the emulator's float `finished_at`, not the whole-second `updated_at` of the API).
API budget = provider calls that named the job's task (its create, GETs, DELETEs) from the
emulator's per-task counters; list calls, which name no task, are counted separately.
All three modes get the same jobs at the same pace against the same emulator in the same run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import bounds, jobs
from bench.plan import Plan
from bench.report import Figure, ScenarioResult
from bench.stack import EMULATOR_KEY, MODEL, BenchStack, EmulatorSpec, WorkerConfig, cores_used
from bench.stats import median, summary
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import JobRecord, Outcome

TARGET_P50_SECONDS = 1.0
TARGET_MEDIAN_CALLS = 2
PATH_SAMPLE = 50
"""Histories read per pipeline mode for the critical-path breakdown."""


@dataclass
class Sample:
    """One job as the provider and the storage saw it."""

    task_id: str
    ok: bool
    succeeded_at: float | None
    stored_mtime: float | None
    api_calls: int
    downloads: int
    stored_at_record: float | None = None
    job_id: str | None = None

    @property
    def latency(self) -> float | None:
        if self.succeeded_at is None or self.stored_mtime is None:
            return None
        return self.stored_mtime - self.succeeded_at


def _sample(task_id: str, path: Path | None, task: dict[str, Any] | None, ok: bool) -> Sample:
    succeeded = task is not None and task["status"] == "succeeded"
    counts = (task or {}).get("requests") or {}
    return Sample(
        task_id=task_id,
        ok=ok and succeeded and path is not None and path.exists(),
        succeeded_at=task["finished_at"] if task and succeeded else None,
        stored_mtime=path.stat().st_mtime if path is not None and path.exists() else None,
        api_calls=jobs.api_calls(task) if task else 0,
        downloads=int(counts.get("file", 0)),
    )


def pipeline_samples(records: list[JobRecord], tasks: dict[str, dict[str, Any]]) -> list[Sample]:
    out = []
    for rec in records:
        task_id = rec.provider_task_id or ""
        path = jobs.file_path(rec.video_uri) if rec.video_uri else None
        sample = _sample(task_id, path, tasks.get(task_id), rec.outcome == Outcome.SUCCEEDED)
        sample.stored_at_record = rec.stored_at.timestamp() if rec.stored_at else None
        sample.job_id = rec.job_id
        out.append(sample)
    return out


async def _pipeline_mode(
    stack: BenchStack, plan: Plan, mode: str, config: WorkerConfig, tag: str
) -> tuple[list[Sample], int]:
    """Start this mode's jobs at the plan's pace and wait for every record."""
    client = await stack.client()
    ids = jobs.job_ids(tag, plan.latency_jobs)
    settings = jobs.settings_for(config)
    await jobs.start_jobs(client, settings, tag, ids, rate_per_second=plan.latency_rate)
    records = await jobs.results(client, ids, plan.job_timeout)
    tasks = await jobs.emulator_tasks(stack.emulator_url)
    return pipeline_samples(records, tasks), 0


async def _naive_mode(stack: BenchStack, plan: Plan) -> tuple[list[Sample], int]:
    model_id = load_settings().models[MODEL].ids["byteplus"]
    out_dir = stack.data / "naive"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.naive",
        "--api-base",
        f"{stack.emulator_url}/api/v3",
        "--api-key",
        EMULATOR_KEY,
        "--model-id",
        model_id,
        "--jobs",
        str(plan.latency_jobs),
        "--rate",
        str(plan.latency_rate),
        "--interval",
        str(plan.naive_interval),
        "--out-dir",
        str(out_dir),
        "--tag",
        jobs.run_tag(),
        cwd=stack.src,
        env=stack.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), plan.job_timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"naive client failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    report = json.loads(stdout)
    tasks = await jobs.emulator_tasks(stack.emulator_url)
    samples = [
        _sample(
            j["task_id"],
            Path(j["path"]) if j["path"] else None,
            tasks.get(j["task_id"]),
            j["status"] == "succeeded",
        )
        for j in report["jobs"]
    ]
    return samples, 0


async def path_medians(
    stack: BenchStack, samples: list[Sample], n: int = PATH_SAMPLE
) -> list[tuple[str, float]]:
    """Median seconds per critical-path stage (provider success -> stored) over some jobs."""
    client = await stack.client()
    stages: dict[str, list[float]] = {}
    order: list[str] = []
    for sample in [s for s in samples if s.ok and s.job_id and s.succeeded_at][:n]:
        assert sample.job_id is not None and sample.succeeded_at is not None
        for name, seconds in await jobs.critical_path(client, sample.job_id, sample.succeeded_at):
            if name not in stages:
                order.append(name)
            stages.setdefault(name, []).append(seconds)
    return [(name, round(median(stages[name]), 4)) for name in order]


def _lists(stats: dict[str, Any]) -> int:
    return int(stats.get("request_totals", {}).get("list", 0))


def _latencies(samples: list[Sample]) -> list[float]:
    return [s.latency for s in samples if s.ok and s.latency is not None]


def _calls(samples: list[Sample]) -> list[float]:
    return [float(s.api_calls) for s in samples if s.ok]


def provider_spec(plan: Plan) -> EmulatorSpec:
    """Provider latency around the model's configured expected latency (queue 20%, run 80%,
    +/-50% jitter), unless the plan fixes a shorter one (smoke)."""
    mean = plan.latency_provider_seconds or load_settings().models[MODEL].expected_latency_seconds
    return EmulatorSpec(
        queue_seconds=round(0.2 * mean, 3),
        run_seconds=round(0.8 * mean, 3),
        jitter=0.5,
        min_video_bytes=plan.latency_video_bytes,
    )


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    spec = provider_spec(plan)
    stack.start_emulator(spec)
    client = await stack.client()
    tags = {"callbacks": jobs.run_tag(), "polling": jobs.run_tag()}
    configs = {
        mode: jobs.worker_config(
            tag, callbacks=mode == "callbacks", expected_latency=spec.mean_latency
        )
        for mode, tag in tags.items()
    }
    for mode, config in configs.items():
        stack.start_worker(config, name=f"worker-{mode}")
    # Warm-up: first-job costs (webhook's Temporal connection, sandbox imports, connection
    # pools) are paid once the warm jobs' tasks exist; they are not counted.
    created = await jobs.emulator_creates(stack.emulator_url)
    for mode, config in configs.items():
        warm = jobs.job_ids(f"{tags[mode]}-warm", plan.warmup_jobs)
        await jobs.start_jobs(client, jobs.settings_for(config), f"{tags[mode]}-warm", warm)
    await jobs.wait_for_creates(stack.emulator_url, created + 2 * plan.warmup_jobs, within=60)
    lists_before = _lists(await jobs.emulator_stats(stack.emulator_url))
    cpu0 = stack.cpu_seconds()
    t0 = time.monotonic()
    callbacks, polling, naive = await asyncio.gather(
        _pipeline_mode(stack, plan, "callbacks", configs["callbacks"], tags["callbacks"]),
        _pipeline_mode(stack, plan, "polling", configs["polling"], tags["polling"]),
        _naive_mode(stack, plan),
    )
    cpu = cores_used(cpu0, stack.cpu_seconds(), time.monotonic() - t0)
    lists = _lists(await jobs.emulator_stats(stack.emulator_url)) - lists_before
    stack.stop_worker()
    modes = {"callbacks": callbacks, "polling": polling, "naive": naive}
    paths = {
        "callbacks": await path_medians(stack, callbacks[0]),
        "polling": await path_medians(stack, polling[0]),
    }
    lat = {m: summary(_latencies(s)) for m, (s, _) in modes.items()}
    calls = {m: summary(_calls(s)) for m, (s, _) in modes.items()}
    failed = {m: sum(1 for x in s if not x.ok) for m, (s, _) in modes.items()}
    naive_lat, naive_calls = lat["naive"], calls["naive"]

    def latency_fig(mode: str, q: str, target: str, met: bool | None) -> Figure:
        return Figure(
            f"completion to storage {q}, {mode}",
            lat[mode].get(q, float("nan")),
            "s",
            naive_lat.get(q, float("nan")),
            "naive client",
            target=target,
            met=met,
        )

    def calls_fig(mode: str, q: str, target: str, met: bool | None) -> Figure:
        label = "median" if q == "p50" else q
        return Figure(
            f"provider calls per job {label}, {mode}",
            calls[mode].get(q, float("nan")),
            "calls",
            naive_calls.get(q, float("nan")),
            "naive client",
            target=target,
            met=met,
        )

    cb_p50 = lat["callbacks"].get("p50", float("nan"))
    cb_calls = calls["callbacks"].get("p50", float("nan"))
    result.figures += [
        latency_fig(
            "callbacks",
            "p50",
            f"< {TARGET_P50_SECONDS:.0f} s (5 MB)",
            failed["callbacks"] == 0 and cb_p50 < TARGET_P50_SECONDS,
        ),
        latency_fig("callbacks", "p95", "reported", None),
        latency_fig("callbacks", "p99", "reported", None),
        latency_fig("polling", "p50", "reported", None),
        latency_fig("polling", "p95", "reported", None),
        latency_fig("polling", "p99", "reported", None),
        calls_fig(
            "callbacks",
            "p50",
            f"<= {TARGET_MEDIAN_CALLS}",
            failed["callbacks"] == 0 and cb_calls <= TARGET_MEDIAN_CALLS,
        ),
        calls_fig("callbacks", "p95", "reported", None),
        calls_fig("polling", "p50", "reported", None),
        calls_fig("polling", "p95", "reported", None),
    ]
    record_lag = [
        s.stored_at_record - s.stored_mtime
        for s in modes["callbacks"][0]
        if s.stored_at_record is not None and s.stored_mtime is not None
    ]
    result.details.update(
        {
            "jobs_per_mode": plan.latency_jobs,
            "start_rate_per_second": plan.latency_rate,
            "video_bytes": plan.latency_video_bytes,
            "emulator": spec.argv(),
            "latency_seconds": lat,
            "api_calls_per_job": calls,
            "list_calls_total": lists,
            "cores_used": cpu,
            "critical_path_median_s": paths,
            "downloads_per_job": {
                m: summary([float(x.downloads) for x in s if x.ok]) for m, (s, _) in modes.items()
            },
            "failed_jobs": failed,
            "record_stored_at_minus_file_mtime": summary(record_lag),
            "samples": {m: [asdict(x) for x in s] for m, (s, _) in modes.items()},
        }
    )
    polling_settings = load_settings().polling
    result.bounds += bounds.latency(
        result.details,
        spec.mean_latency,
        {
            "first_factor": polling_settings.first_poll_factor,
            "min": polling_settings.min_interval_seconds,
            "max": polling_settings.max_interval_seconds,
            "backoff": polling_settings.backoff,
        },
    )
    result.how += [
        f"`python -m bench --only latency`: the three modes run side by side against one "
        f"emulator, each with {plan.latency_jobs} jobs started at {plan.latency_rate:g} "
        f"jobs/s (so all three see the same load and noise; together well below the "
        f"throughput ceiling). 5 MB videos; provider latency {spec.mean_latency:g} s "
        f"+/-50% (`{' '.join(spec.argv())}`), "
        + (
            "fixed short for this run"
            if plan.latency_provider_seconds
            else "around the model's configured expected latency"
        )
        + f"; {plan.warmup_jobs} warm-up job(s) per pipeline mode not counted.",
        "Pipeline modes: two `python worker.py` processes on their own task queues, model "
        f"expected latency {spec.mean_latency:g} s "
        f"(`SEEDANCE_MODELS__{MODEL.upper()}__EXPECTED_LATENCY_SECONDS`): callbacks on = "
        "repair poll after 1.5x that; polling only (`SEEDANCE_CALLBACKS__BASE_URL=`) = first "
        "poll at 0.5x, then x1.6 backoff (2 s min, 60 s max), the configured defaults.",
        f"Naive client: `bench/naive.py` (create, GET every {plan.naive_interval:g} s, "
        "`httpx.get` the video, write it), its own process, same pace and request body.",
        "Completion to storage = stored file mtime - emulator `finished_at` (float Unix "
        "seconds, same machine clock), per job; p50/p95/p99 over each mode's jobs. "
        "The job record's `stored_at` (time of the workflow task after the copy) lags the "
        f"file by a median of {summary(record_lag).get('p50', float('nan')):.3f} s.",
        "Provider calls per job = create + GETs + DELETEs naming the job's task (emulator "
        "per-task counters, `requests` in `/_emulator/tasks`); downloads are not API calls "
        f"(one per job in every mode, see JSON). List calls during the window: {lists}. "
        f"Failed jobs: {failed}.",
    ]
