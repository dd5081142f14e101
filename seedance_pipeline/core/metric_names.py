"""The project's own metric names, exported on the worker's Prometheus endpoint through the
SDK's metric meter (one endpoint with the SDK's own metrics). The Grafana dashboard in
deploy/ queries exactly these (a test checks it).

The SDK meter has integer counters only, so money is a float histogram: its `_sum` is the
spend and its `_count` the number of billed attempts.
"""

from __future__ import annotations

JOBS = "seedance_jobs"
"""Counter: finished jobs by outcome, model, route."""
JOB_SECONDS = "seedance_job_seconds"
"""Histogram (float s): request to final record, by outcome and model."""
PROVIDER_CALLS = "seedance_provider_calls"
"""Counter: provider API calls by operation (create/get/list/delete) and status."""
PROVIDER_CALL_SECONDS = "seedance_provider_call_seconds"
"""Histogram (float s): provider API call latency by operation."""
PROVIDER_QUEUE_SECONDS = "seedance_provider_queue_seconds"
"""Histogram (float s): provider created -> running (when observed)."""
PROVIDER_RUN_SECONDS = "seedance_provider_run_seconds"
"""Histogram (float s): provider created -> finished (its own timestamps)."""
COMPLETION_TO_STORAGE_SECONDS = "seedance_completion_to_storage_seconds"
"""Histogram (float s): provider `succeeded` (its updated_at) -> object committed."""
COST = "seedance_cost"
"""Histogram (float, route currency): cost per billed attempt, by route, model, currency."""
VIDEO_SECONDS = "seedance_video_seconds"
"""Counter: seconds of video generated (billed), by route, model."""
CALLBACKS = "seedance_callbacks"
"""Counter: callbacks received by a job, accepted or ignored."""
CAPACITY_WAITING = "seedance_capacity_waiting"
"""Gauge: jobs waiting for a slot at their account's gate, by route and model ID."""
CAPACITY_IN_FLIGHT = "seedance_capacity_in_flight"
"""Gauge: slots held (creates in flight and tasks at the provider), by route and model ID."""
CAPACITY_RPM_LEARNED = "seedance_capacity_rpm_learned"
"""Gauge (float): the gate's learned creates per minute, by route and model ID."""
CAPACITY_QUEUED_LEARNED = "seedance_capacity_queued_learned"
"""Gauge (float): the gate's learned cap on tasks queued at the provider, by route."""
CAPACITY_REFUSALS = "seedance_capacity_refusals"
"""Counter: creates the provider refused with 429, by route and the limit named."""
RECONCILE_FINDINGS = "seedance_reconcile_findings"
"""Counter: reconcile findings by route, kind and `salvaged` (false: an operator must look)."""

ALL = (
    JOBS,
    JOB_SECONDS,
    PROVIDER_CALLS,
    PROVIDER_CALL_SECONDS,
    PROVIDER_QUEUE_SECONDS,
    PROVIDER_RUN_SECONDS,
    COMPLETION_TO_STORAGE_SECONDS,
    COST,
    VIDEO_SECONDS,
    CALLBACKS,
    CAPACITY_WAITING,
    CAPACITY_IN_FLIGHT,
    CAPACITY_RPM_LEARNED,
    CAPACITY_QUEUED_LEARNED,
    CAPACITY_REFUSALS,
    RECONCILE_FINDINGS,
)
