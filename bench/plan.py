"""How big each scenario is: the full run (`make bench`) and the smoke run (`make bench-smoke`).

The full sizes are the issues' minimums (500 jobs, 200 jobs per latency mode, 1,000 in flight,
one 500 MB video); the smoke run keeps every code path with a few jobs so it finishes in well
under a minute and can run inside `make test`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from bench.stack import EmulatorSpec

MB = 1_000_000
"""Video sizes are decimal megabytes, as the issues state them (1 MB, 5 MB, 500 MB)."""

FAST_PROVIDER = EmulatorSpec(queue_seconds=0.5, run_seconds=1.5, jitter=0.5)
"""Provider latency 1-3 s: queue 0.25-0.75 s plus run 0.75-2.25 s (jitter +/-50%)."""


@dataclass(frozen=True)
class Plan:
    name: str
    throughput_jobs: int
    throughput_reps: int
    warmup_jobs: int
    latency_jobs: int
    latency_rate: float
    memory_steps: tuple[int, ...]
    memory_target_jobs: int
    copy_bytes: int
    copy_reps: int
    throughput_diag_jobs: int = 0
    """Jobs of the diagnosis pass with the model breaker disabled (0 = skip it)."""
    throughput_file_jobs: int = 0
    """Jobs of the second throughput pass on a SQLite-file dev server (0 = skip it)."""
    throughput_video_bytes: int = 1 * MB
    latency_video_bytes: int = 5 * MB
    latency_provider_seconds: float | None = None
    """Mean provider latency in the latency scenario; None = the model's configured one."""
    naive_interval: float = 5.0
    job_timeout: float = 900.0
    profile: bool = False
    """Sample the worker with py-spy while it is measured (when py-spy is installed)."""
    api_submit_jobs: int = 500
    """Jobs per run of the API submit scenario (through the API and direct, each)."""
    api_submit_reps: int = 2


FULL = Plan(
    name="full",
    throughput_jobs=500,
    throughput_reps=2,
    throughput_diag_jobs=500,
    throughput_file_jobs=200,
    warmup_jobs=5,
    latency_jobs=200,
    latency_rate=2.0,
    memory_steps=(0, 250, 500, 750, 1000),
    memory_target_jobs=1000,
    copy_bytes=500 * MB,
    copy_reps=5,
    profile=True,
)

SMOKE = Plan(
    name="smoke",
    throughput_jobs=6,
    throughput_reps=1,
    throughput_diag_jobs=3,
    warmup_jobs=1,
    latency_jobs=3,
    latency_rate=4.0,
    latency_provider_seconds=2.0,
    memory_steps=(0, 10, 20),
    memory_target_jobs=20,
    copy_bytes=20 * MB,
    copy_reps=1,
    job_timeout=60.0,
    api_submit_jobs=10,
    api_submit_reps=1,
)

QUICK = replace(
    FULL,
    name="quick",
    throughput_jobs=300,
    throughput_diag_jobs=0,
    throughput_file_jobs=150,
    latency_jobs=60,
    memory_steps=(0, 250, 500),
    memory_target_jobs=500,
    copy_bytes=200 * MB,
    copy_reps=3,
    api_submit_jobs=300,
    api_submit_reps=1,
)
"""For iterating on a fix: the same scenarios, smaller; never overwrites the published figures."""

PLANS = {"full": FULL, "smoke": SMOKE, "quick": QUICK}
