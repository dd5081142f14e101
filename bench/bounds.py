""" "What bounds it": sentences built from what the run measured, never written by hand.

Each scenario stores its evidence in `details` (cores each process kept busy, history events,
per-activity queue and run times, critical-path stages, py-spy summaries); these functions turn
that evidence into the lines under each table, so the explanation is regenerated with the
figures and cannot drift from them.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from seedance_pipeline.adapters.object_store import S3_PART_BYTES, S3_PARTS_IN_FLIGHT

PROCESS_LABELS = {
    "temporal": "Temporal",
    "worker": "worker",
    "floor_worker": "floor worker",
    "webhook": "webhook",
    "emulator": "emulator",
    "harness": "harness",
}


def _cores(used: dict[str, float]) -> str:
    parts = [
        f"{PROCESS_LABELS.get(k, k)} {v:.2f}"
        for k, v in sorted(used.items(), key=lambda kv: -kv[1])
        if k not in ("total", "iowait") and v >= 0.01
    ]
    return ", ".join(parts)


def _profile(summary: dict[str, Any] | None, top: int = 6) -> str | None:
    if not summary or not summary.get("samples"):
        return None
    selfs = "; ".join(f"`{name}` {pct}%" for name, pct in summary["self_pct"][:top])
    watched = ", ".join(
        f"{label} {pct}%" for label, pct in summary.get("watched_inclusive_pct", {}).items() if pct
    )
    text = f"py-spy, {summary['samples']} samples at 50 Hz, non-blocking. Self time: {selfs}."
    if watched:
        text += f" Inclusive: {watched}."
    return text


def throughput(details: dict[str, Any], rate: float, floor_rate: float, cores: int) -> list[str]:
    """Cores, CPU per job, server events per job, slow activities, worker profile."""
    out: list[str] = []
    pipe = details["cores_used"]["pipeline"][0]
    floor = details["cores_used"]["floor"][0]
    busy = pipe["total"] / cores
    verdict = (
        "the cores are the limit"
        if busy >= 0.85
        else "so it is not CPU-bound: jobs spend their time waiting (see the activities below)"
    )
    out.append(
        f"Cores: the pipeline run kept {pipe['total']:.2f} of {cores} cores busy ({_cores(pipe)}; "
        f"I/O wait {pipe.get('iowait', 0):.2f}), {verdict}; the floor run kept "
        f"{floor['total']:.2f} busy ({_cores(floor)})."
    )
    per_job = {k: v * 60 / rate * 1000 for k, v in pipe.items() if k != "iowait"}
    per_floor = {k: v * 60 / floor_rate * 1000 for k, v in floor.items() if k != "iowait"}
    budget = ""
    if busy >= 0.85:
        budget = (
            f" With the cores as the limit, 70% of the floor's rate allows "
            f"{per_floor['total'] / 0.7:.0f} ms of CPU per job."
        )
    out.append(
        f"CPU per job: {per_job['total']:.0f} ms (Temporal {per_job.get('temporal', 0):.0f} ms, "
        f"worker {per_job.get('worker', 0):.0f} ms) against the floor's "
        f"{per_floor['total']:.0f} ms (Temporal {per_floor.get('temporal', 0):.0f} ms, floor "
        f"worker {per_floor.get('floor_worker', 0):.0f} ms).{budget}"
    )
    shape = details["job_shape"]
    other = details.get("other_workflows") or {}
    jobs = details.get("jobs_total", 0)
    extra = ""
    if other.get("runs"):
        per = other["history_events"] / jobs if jobs else float("nan")
        extra = (
            f"; the job and breaker queues also ran {other['runs']} run(s) of "
            f"{', '.join(other['types'])} "
            f"with {other['history_events']} events ({per:.1f} per job)"
        )
    out.append(
        f"Server work per job: {shape['history_events']} history events against the floor's "
        f"{details['floor_history_events']}{extra}."
    )
    timings = details.get("activity_timings_s") or {}
    slow = sorted(timings.items(), key=lambda kv: -(kv[1]["queue_p95"] + kv[1]["run_p95"]))[:3]
    if slow:
        items = "; ".join(
            f"`{name}` waited p95 {t['queue_p95']:.2f} s for a slot, ran p50 {t['run_p50']:.2f} "
            f"s / p95 {t['run_p95']:.2f} s"
            for name, t in slow
        )
        waited = any(t["queue_p95"] > 1.0 for _, t in slow)
        note = (
            " An activity that waits for a slot means all of the job queue's activity slots "
            "were held by running activities."
            if waited
            else ""
        )
        out.append(f"Slowest activities (first {details['timing_sample']} jobs): {items}.{note}")
    prof = _profile(details.get("worker_profile"))
    if prof:
        out.append(f"Worker profile (an extra pipeline run of the same size, not counted): {prof}")
    return out


def cpu_ms_per_job(details: dict[str, Any], rate: float) -> float:
    """Milliseconds of CPU (every process of the stack) per pipeline job."""
    return float(details["cores_used"]["pipeline"][0]["total"]) * 60 / rate * 1000


def breaker_off(
    main: dict[str, Any], rate: float, diag: dict[str, Any], diag_rate: float, diag_floor: float
) -> str:
    with_breaker = cpu_ms_per_job(main, rate)
    without = cpu_ms_per_job(diag, diag_rate)
    return (
        f"Diagnosis, same server with the per-model breaker disabled: {diag_rate:.0f} jobs/min "
        f"against its floor's {diag_floor:.0f} ({diag_rate / diag_floor:.2f}), "
        f"{without:.0f} ms of CPU per job against {with_breaker:.0f} ms with it: the breaker "
        f"(`choose_model`, `report_health` and their ModelHealthWorkflow) costs "
        f"{with_breaker - without:.0f} ms per job here, "
        f"{diag['job_shape']['history_events']} history events per job without it."
    )


def sqlite_file(details: dict[str, Any], rate: float, floor_rate: float, cores: int) -> str:
    pipe = details["cores_used"]["pipeline"][0]
    floor = details["cores_used"]["floor"][0]
    busy = max(floor["total"], pipe["total"]) >= 0.85 * cores
    iowait = max(floor.get("iowait", 0), pipe.get("iowait", 0))
    verdict = (
        "the cores are the limit, as on the in-memory server"
        if busy
        else "the server waits on the disk for its writes, which caps both"
        if iowait >= 0.15
        else "neither the cores nor the disk are saturated: jobs wait on each other's round trips"
    )
    return (
        f"Temporal on a SQLite file (WAL, synchronous=normal, as `make up`): floor "
        f"{floor_rate:.0f} and pipeline {rate:.0f} jobs/min with {floor['total']:.2f} and "
        f"{pipe['total']:.2f} of {cores} cores busy and {floor.get('iowait', 0):.2f} / "
        f"{pipe.get('iowait', 0):.2f} cores waiting for I/O: {verdict}."
    )


def poll_schedule(first: float, minimum: float, maximum: float, backoff: float) -> list[float]:
    """Seconds after submit at which the polling-only workflow asks the provider."""
    times, at, interval = [], 0.0, first
    for _ in range(5):
        at += interval
        times.append(round(at, 1))
        interval = min(max(interval * backoff, minimum), maximum)
    return times


def latency(details: dict[str, Any], expected: float, polling: dict[str, float]) -> list[str]:
    out: list[str] = []
    paths = details.get("critical_path_median_s", {})
    lat = details["latency_seconds"]
    calls = details["api_calls_per_job"]
    for mode in ("callbacks", "polling"):
        stages = paths.get(mode) or []
        if stages:
            text = "; ".join(f"{name} {secs * 1000:.0f} ms" for name, secs in stages)
            out.append(
                f"{mode.capitalize()}, median per stage (provider success to stored copy): "
                f"{text}; end to end p50 {lat[mode].get('p50', float('nan')):.2f} s."
            )
    first = max(polling["min"], expected * polling["first_factor"])
    schedule = poll_schedule(first, polling["min"], polling["max"], polling["backoff"])
    out.append(
        f"Polling only learns of success at its next poll: polls at {schedule} s after submit "
        f"(first at {polling['first_factor']:g}x the {expected:g} s expected latency, then "
        f"x{polling['backoff']:g}), so a task finishing between polls waits for the next one; "
        f"that wait is the p50 {lat['polling'].get('p50', float('nan')):.1f} s."
    )
    out.append(
        "The naive client learns of success at its next GET (every 5 s): the wait is spread "
        f"over 0-5 s (p50 {lat['naive'].get('p50', float('nan')):.1f} s) plus its download."
    )
    out.append(
        f"Calls: with callbacks a job makes its create and one GET after the terminal callback "
        f"(the callback is an unsigned hint that the workflow confirms), p95 "
        f"{calls['callbacks'].get('p95', float('nan')):.0f}; polling makes the create plus one "
        f"GET per poll (median {calls['polling'].get('p50', float('nan')):.0f}); the naive "
        f"client makes the create plus one GET per 5 s of provider latency (median "
        f"{calls['naive'].get('p50', float('nan')):.0f})."
    )
    return out


def memory(details: dict[str, Any], target: int) -> list[str]:
    pipe = details["pipeline_rss_mb"]
    floor = details["floor_rss_mb"]
    per_job = details["pipeline_mb_per_100_jobs"] * 10
    floor_job = details["floor_mb_per_100_jobs"] * 10
    wait = details["waiting_job_shape"]
    return [
        f"At rest the worker holds {pipe[0]:.0f} MB, the floor worker {floor[0]:.0f} MB (the "
        "difference is the pipeline's code and clients).",
        f"Each waiting job adds {per_job:.0f} KB (a floor {floor_job:.0f} KB): the cached "
        f"workflow run with its sandbox and state and its history so far "
        f"({wait['history_events']} events: {wait['activities']}, {wait['signals']} signal, "
        f"{wait['timers']} timer); at {target} jobs that is "
        f"{pipe[target] - pipe[0]:.0f} MB over the resting size.",
    ]


def sha256_mb_per_s(megabytes: int = 64) -> float:
    """How fast this CPU hashes with sha256 (one core), for the copy explanation."""
    data = bytes(megabytes * 1_000_000)
    start = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    return megabytes / (time.perf_counter() - start)


def _median_cores(reps: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Per-part median of the reps' `key` (cores busy per part); {} for older result files."""
    rows = [r[key] for r in reps if key in r]
    names = sorted({name for row in rows for name in row})
    return {n: sorted(row.get(n, 0.0) for row in rows)[len(rows) // 2] for n in names}


def _cores_text(cores: dict[str, float]) -> str:
    own = {name: value for name, value in cores.items() if name != "machine"}
    parts = " + ".join(f"{name} {value:.2f}" for name, value in own.items())
    text = f"{parts} = {sum(own.values()):.2f}"
    if "machine" in cores:
        text += f" (whole machine, other users included: {cores['machine']:.2f})"
    return text


def copy(details: dict[str, Any], size_mb: float) -> list[str]:
    """Time against the plain copy, the cores each process kept busy, sha256, profile."""
    out: list[str] = []
    sha = details.get("sha256_mb_per_s")
    for backend, label in (("file", "File store"), ("s3", "S3")):
        reps = details.get(backend, {}).get("reps") or []
        if not reps:
            continue
        pipe_s = sorted(r["pipeline_seconds"] for r in reps)[len(reps) // 2]
        plain_s = sorted(r["plain_seconds"] for r in reps)[len(reps) // 2]
        text = (
            f"{label}: the pipeline takes {pipe_s:.2f} s for {size_mb:.0f} MB against the "
            f"plain copy's {plain_s:.2f} s ({pipe_s - plain_s:+.2f} s)."
        )
        pipe_cores = _median_cores(reps, "pipeline_cores")
        plain_cores = _median_cores(reps, "plain_cores")
        if pipe_cores and plain_cores:
            text += (
                " Cores kept busy (CPU seconds per second of copy, medians; 2 on this machine): "
                f"pipeline {_cores_text(pipe_cores)}; plain {_cores_text(plain_cores)}."
            )
        summary = details.get(backend, {}).get("worker_profile") or {}
        hot = {name for name, _ in summary.get("self_pct", [])}
        if backend == "file" and sha:
            hashing = size_mb / sha
            text += (
                f" The pipeline also hashes every byte (sha256 runs at {sha:.0f} MB/s on one "
                f"core here: {hashing:.2f} s of CPU for {size_mb:.0f} MB), which the plain copy "
                "does not; it runs on a thread beside the download (`activities/offload.py`), "
                "so it costs time only when no core is free for it."
            )
            if any("ByteChunker" in h for h in hot):
                text += " httpx re-chunking the body shows in the profile."
        if backend == "s3":
            text += (
                f" The pipeline uploads up to {S3_PARTS_IN_FLIGHT} parts of "
                f"{S3_PART_BYTES // 2**20} MiB at once while it keeps reading; "
                "the plain copy is boto3's managed upload, up to 10 threads. moto (pure Python, "
                "one process) receives both."
            )
            if any("SigV4Auth.payload" in h for h in hot):
                text += (
                    " Over plain HTTP (moto on loopback) botocore signs each part's payload "
                    "with sha256 (`SigV4Auth.payload` in the profile); both copies pay that."
                )
        prof = _profile(summary)
        if prof:
            text += f" Worker profile (an extra, uncounted copy): {prof}"
        out.append(text)
    return out
