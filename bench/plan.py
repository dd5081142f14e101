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
    throughput_provider: EmulatorSpec = FAST_PROVIDER
    """The provider's latency in the throughput scenario (videos padded to the size above)."""
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
    capacity_task_seconds: float = 6.0
    """Provider task latency in the capacity scenario: Mini's expected 30 s x 0.2."""
    capacity_enterprise_jobs: int = 500
    """Burst size on the enterprise preset: 50x its concurrency of 10 (0 = skip)."""
    capacity_individual_jobs: int = 150
    """Burst size on the individual preset: 50x its concurrency of 3 (0 = skip)."""
    capacity_max_queued: int = 0
    """The emulator's queued cap for the bursts (0 = the preset's 120); the smoke run lowers it
    so its few jobs still draw 429s without the gate."""
    capacity_learning_jobs: int = 400
    """Four minutes at the enforced 100/min: finding the limit costs a fixed number of
    refusals in its first window, the rest of the run shows the learned rate."""
    capacity_learning_rpm: int = 100
    """The RPM the emulator enforces while the gate is configured 3x above it."""
    capacity_low_jobs: int = 150
    capacity_scale_steps: tuple[int, ...] = (0, 500, 1000, 1500, 2000, 2500, 3000)
    capacity_scale_cache: int = 1000
    """`temporal.max_cached_workflows` in the scale part (the SDK's default)."""
    capacity_throughput_jobs: int = 300
    capacity_throughput_reps: int = 2
    """Runs each of gate on and gate off (alternating, each with its own floor run)."""


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
    latency_provider_seconds=1.0,
    naive_interval=1.0,
    memory_steps=(0, 10, 20),
    memory_target_jobs=20,
    copy_bytes=20 * MB,
    copy_reps=1,
    job_timeout=60.0,
    # Each throughput pass waits out the provider four times (warm-up, floor warm-up, floor,
    # pipeline) and the smoke runs two passes: a 0.3-0.9 s provider instead of 1-3 s keeps
    # every step and takes about 12 s less; the rates are not judged in a smoke.
    throughput_provider=EmulatorSpec(queue_seconds=0.15, run_seconds=0.45, jitter=0.5),
    api_submit_jobs=10,
    api_submit_reps=1,
    capacity_task_seconds=1.5,
    capacity_enterprise_jobs=0,
    capacity_individual_jobs=12,
    capacity_max_queued=4,
    capacity_learning_jobs=0,
    capacity_low_jobs=0,
    capacity_scale_steps=(),
    capacity_throughput_jobs=0,
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
    capacity_enterprise_jobs=200,
    capacity_individual_jobs=60,
    capacity_learning_jobs=250,
    capacity_low_jobs=60,
    capacity_scale_steps=(0, 400, 800, 1200, 1600),
    capacity_scale_cache=400,
    capacity_throughput_jobs=150,
)
"""For iterating on a fix: the same scenarios, smaller; never overwrites the published figures."""

PLANS = {"full": FULL, "smoke": SMOKE, "quick": QUICK}
