"""Copy: one large video from the emulator to storage, against a plain streamed httpx copy.

For each backend (file directory; S3 on moto's server mode on loopback) and repetition: run one
job whose video is padded to the plan's size, take the `copy_output` activity's duration from
the job's history (server times of its start and completion) and the worker's peak memory
growth during the job (VmRSS before, VmHWM after, the peak reset just before the job); then
copy the same URL to the same destination with `bench/plain_copy.py` in its own process and
take its duration and peak growth the same way. Figures are medians over the repetitions.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import boto3

from bench import bounds, jobs
from bench.plan import Plan
from bench.procs import (
    MB,
    Proc,
    cpu_seconds,
    peak_rss_bytes,
    reset_peak_rss,
    rss_bytes,
)
from bench.profile import Profile, py_spy
from bench.report import Figure, ScenarioResult
from bench.stack import BenchStack, EmulatorSpec
from bench.stats import median
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.stack.ports import free_port

TARGET_RATIO = 0.80
TARGET_GROWTH_MB = 64.0
BUCKET = "seedance-bench"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",  # moto accepts any credentials
    "AWS_DEFAULT_REGION": "us-east-1",
}


async def _plain_copy(stack: BenchStack, url: str, dest: str, endpoint: str) -> dict[str, Any]:
    env = {**stack.env(), **AWS_ENV}
    argv = [sys.executable, "-m", "bench.plain_copy", "--url", url, "--dest", dest]
    if endpoint:
        argv += ["--s3-endpoint", endpoint]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=stack.src,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"plain copy failed: {err.decode()[-2000:]}")
    data: dict[str, Any] = json.loads(out)
    return data


def _start_moto(stack: BenchStack) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc(
        "moto",
        [sys.executable, "-m", "bench.moto_server", "--port", str(port)],
        {**stack.env(), **AWS_ENV},
        stack.logs / "moto.log",
        stack.src,
    ).start()
    proc.wait_ready(lambda: proc.log_contains("moto.started"))
    return proc, f"http://127.0.0.1:{port}"


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far (/proc/stat: all but idle and
    iowait): the machine is shared, and a copy that needs more CPU than the cores left free
    takes longer."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _cpu(stack: BenchStack, moto: Proc | None) -> dict[str, float]:
    """CPU seconds so far of the parts a copy keeps busy (worker, emulator, moto) and of the
    whole machine (`machine`, everyone's)."""
    parts = {"worker": stack.worker, "emulator": stack.emulator, "moto": moto}
    out = {name: cpu_seconds(p.pid) for name, p in parts.items() if p is not None and p.alive()}
    out["machine"] = _machine_busy_seconds()
    return out


def _cores(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """CPU seconds per second of copy, per part: how many of the 2 cores each kept busy."""
    return {name: round((after[name] - before[name]) / seconds, 3) for name in after}


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 (moto accepts any credentials)
    )


def _empty_bucket(s3: Any) -> None:
    listed = s3.list_objects_v2(Bucket=BUCKET)
    for obj in listed.get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


async def _backend(
    stack: BenchStack, plan: Plan, spec: EmulatorSpec, backend: str
) -> dict[str, Any]:
    moto: Proc | None = None
    endpoint = ""
    s3: Any = None
    extra: dict[str, str] = {}
    storage = None
    if backend == "s3":
        moto, endpoint = _start_moto(stack)
        s3 = _s3(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        storage = f"s3://{BUCKET}/pipeline"
        extra = {**AWS_ENV, "SEEDANCE_STORAGE__S3_ENDPOINT_URL": endpoint}
    try:
        tag = jobs.run_tag()
        config = jobs.worker_config(
            tag, expected_latency=spec.mean_latency, storage_uri=storage, extra_env=extra
        )
        worker = stack.start_worker(config)
        settings = jobs.settings_for(config)
        client = await stack.client()
        reps: list[dict[str, Any]] = []
        profile_summary = None
        # Rep -1 warms the page cache, pools and imports and is not counted; with profiling on,
        # one more rep runs under py-spy after the measured ones, also not counted.
        last = plan.copy_reps + (1 if plan.profile and py_spy() else 0)
        for rep in range(-1, last):
            sampler = None
            if rep == plan.copy_reps:
                sampler = Profile(worker.pid, stack.data / f"profile-copy-{backend}.txt")
            before = rss_bytes(worker.pid)
            reset_peak_rss(worker.pid)
            cpu_before = _cpu(stack, moto)
            (job_id,) = jobs.job_ids(f"{tag}-{backend}", 1, offset=rep + 1)
            await jobs.start_jobs(client, settings, f"{tag}-{backend}", [job_id])
            (record,) = await jobs.results(client, [job_id], plan.job_timeout)
            peak = peak_rss_bytes(worker.pid)
            cpu_after = _cpu(stack, moto)
            if sampler is not None:
                profile_summary = sampler.stop()
            if record.outcome != Outcome.SUCCEEDED or not record.provider_video_url:
                raise RuntimeError(f"copy job {job_id} ended {record.outcome}: {record.error}")
            started, completed = await jobs.activity_window(client, job_id, "copy_output")
            if backend == "s3":
                dest = f"s3://{BUCKET}/plain/{rep}.mp4"
            else:
                dest = str(stack.outputs / "plain" / f"{rep}.mp4")
            cpu_plain_before = _cpu(stack, moto)
            plain = await _plain_copy(stack, record.provider_video_url, dest, endpoint)
            cpu_plain = _cpu(stack, moto)
            cpu_plain.pop("worker", None)
            cpu_plain_before["plain_copy"], cpu_plain["plain_copy"] = 0.0, plain["cpu_seconds"]
            if record.video_bytes != plain["bytes"]:
                raise RuntimeError(f"sizes differ: {record.video_bytes} vs {plain['bytes']}")
            if s3 is not None:
                _empty_bucket(s3)
            else:
                jobs.file_path(record.video_uri or "").unlink(missing_ok=True)
                (stack.outputs / "plain" / f"{rep}.mp4").unlink(missing_ok=True)
            if not 0 <= rep < plan.copy_reps:
                continue
            pipe_tp = (record.video_bytes or 0) / MB / (completed - started)
            plain_tp = plain["bytes"] / MB / plain["seconds"]
            reps.append(
                {
                    "bytes": record.video_bytes,
                    "pipeline_seconds": completed - started,
                    "pipeline_mb_per_s": pipe_tp,
                    "pipeline_rss_before_mb": before / MB,
                    "pipeline_peak_growth_mb": (peak - before) / MB,
                    "plain_bytes": plain["bytes"],
                    "plain_seconds": plain["seconds"],
                    "plain_mb_per_s": plain_tp,
                    "plain_peak_growth_mb": (plain["rss_peak"] - plain["rss_before"]) / MB,
                    "ratio": pipe_tp / plain_tp,
                    "pipeline_cores": _cores(cpu_before, cpu_after, completed - started),
                    "plain_cores": _cores(cpu_plain_before, cpu_plain, plain["seconds"]),
                }
            )
        stack.stop_worker()
        return {"reps": reps, "worker_profile": profile_summary}
    finally:
        if moto is not None:
            moto.stop()


def _med(reps: list[dict[str, Any]], key: str) -> float:
    return median([float(r[key]) for r in reps])


async def run(stack: BenchStack, plan: Plan, result: ScenarioResult) -> None:
    spec = EmulatorSpec(queue_seconds=0.05, run_seconds=0.05, min_video_bytes=plan.copy_bytes)
    stack.start_emulator(spec)
    names = {"file": "file store", "s3": "S3 (moto server)"}
    for backend, label in names.items():
        data = await _backend(stack, plan, spec, backend)
        reps = data["reps"]
        result.details[backend] = data
        pipe_tp, plain_tp = _med(reps, "pipeline_mb_per_s"), _med(reps, "plain_mb_per_s")
        growth = _med(reps, "pipeline_peak_growth_mb")
        worst = max(float(r["pipeline_peak_growth_mb"]) for r in reps)
        result.figures += [
            Figure(
                f"copy throughput, {label}",
                pipe_tp,
                "MB/s",
                plain_tp,
                "plain httpx copy",
                target=f">= {TARGET_RATIO:.0%} of plain",
                met=pipe_tp / plain_tp >= TARGET_RATIO,
                ratio_label="of plain",
            ),
            Figure(
                f"worker peak memory growth during copy, {label}",
                growth,
                "MB",
                _med(reps, "plain_peak_growth_mb"),
                "plain copy process",
                target=f"< {TARGET_GROWTH_MB:.0f} MB",
                met=worst < TARGET_GROWTH_MB,
            ),
        ]
        result.details[f"{backend}_summary"] = {
            "pipeline_mb_per_s": [r["pipeline_mb_per_s"] for r in reps],
            "plain_mb_per_s": [r["plain_mb_per_s"] for r in reps],
            "per_rep_ratio": [r["ratio"] for r in reps],
            "pipeline_growth_mb": [r["pipeline_peak_growth_mb"] for r in reps],
            "plain_growth_mb": [r["plain_peak_growth_mb"] for r in reps],
            "worst_pipeline_growth_mb": worst,
            "pipeline_seconds_stdev": statistics.pstdev([r["pipeline_seconds"] for r in reps]),
        }
    result.details["sha256_mb_per_s"] = bounds.sha256_mb_per_s()
    result.bounds += bounds.copy(result.details, plan.copy_bytes / MB)
    result.how += [
        f"`python -m bench --only copy`: one {plan.copy_bytes / MB:.0f} MB video per "
        f"repetition (emulator `--min-video-bytes {plan.copy_bytes}`: a real MP4 padded with a "
        f"`free` box), {plan.copy_reps} repetition(s) per backend after one uncounted "
        "warm-up (page cache, connection pools), each pipeline copy followed by the plain "
        "copy of its URL; medians reported; the memory target is judged on the worst "
        "repetition.",
        "Pipeline: a whole job through `python worker.py`; throughput = video bytes / "
        "(`copy_output` ActivityTaskCompleted - ActivityTaskStarted, server times from the "
        "job's history); memory = worker VmHWM after the job (peak reset via "
        "/proc/<pid>/clear_refs just before it) - VmRSS before it.",
        "Baseline: `bench/plain_copy.py` in its own process, the same signed URL to the same "
        "destination (same directory tree; same bucket), timed around the copy only: "
        "`httpx.stream` + file writes, or `boto3 upload_fileobj` over the response for S3 "
        "(boto3's managed multipart upload, default 8 MB parts, 10 threads).",
        "S3: `moto.server.ThreadedMotoServer` on loopback in its own process "
        "(`bench/moto_server.py`); both copies write to bucket "
        f"`{BUCKET}`; objects are deleted between repetitions.",
    ]
