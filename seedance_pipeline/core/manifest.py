"""The reproducibility manifest stored beside each video.

Everything needed to regenerate the video or audit its cost: the full request, the exact model
ID with its date suffix, the route, every parameter the provider used, each attempt, usage,
cost, outcome and both URLs (the provider's temporary one and ours). No secrets: the callback
URL is not included, and nothing here comes from the worker's environment.
"""

from __future__ import annotations

from typing import Any

from seedance_pipeline.core.follow import FollowTaskInput, FollowTaskResult
from seedance_pipeline.core.layout import layout_of
from seedance_pipeline.core.models import GenerationRequest, JobRecord, ProviderTask

MANIFEST_VERSION = 2
"""2: the run (one folder per run, `layout`) and the task followers the job handed over to."""


def build_manifest(record: JobRecord, request: GenerationRequest) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": "job",
        "job_id": record.job_id,
        "run": record.run,
        "layout": layout_of(record.run),
        "followers": list(record.followers),
        "candidate": record.candidate,
        "request": request.model_dump(mode="json"),
        "route": record.route,
        "model_alias": record.model_alias,
        "model_id": record.model_id,
        "parameters": {
            "resolution": record.resolution,
            "ratio": record.ratio,
            "duration": record.duration,
            "seed": record.seed,
            "service_tier": request.service_tier,
            "return_last_frame": request.return_last_frame,
            "generate_audio": request.generate_audio,
            "watermark": request.watermark,
        },
        "references": [r.model_dump(mode="json") for r in request.references],
        "references_checked": [r.model_dump(mode="json") for r in record.references_checked],
        "provider_task_id": record.provider_task_id,
        "outcome": record.outcome.value if record.outcome else None,
        "error": record.error.model_dump(mode="json") if record.error else None,
        "usage": {"completion_tokens": record.tokens, "estimated_tokens": record.estimated_tokens},
        "cost": {
            "amount": record.cost,
            "currency": record.currency,
            "estimated": record.estimated_cost,
        },
        "outputs": {
            "video": {
                "uri": record.video_uri,
                "sha256": record.video_sha256,
                "bytes": record.video_bytes,
                "provider_url": record.provider_video_url,
            },
            "last_frame": {
                "uri": record.last_frame_uri,
                "provider_url": record.provider_last_frame_url,
            },
        },
        "attempts": [a.model_dump(mode="json") for a in record.attempts],
        "timestamps": record.summary()["timestamps"],
        "timeline": [c.model_dump(mode="json") for c in record.timeline],
    }


def build_followed_manifest(
    inp: FollowTaskInput, task: ProviderTask | None, result: FollowTaskResult
) -> dict[str, Any]:
    """The manifest of a task a follower finished after its job ended: what was asked, what
    the provider did and billed, and where the outputs are (the run's `followed-<n>/` folder)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": "followed_task",
        "job_id": inp.job_id,
        "run": inp.run,
        "submit_no": inp.submit_no,
        "layout": layout_of(inp.run, inp.submit_no),
        "handed_over_because": inp.reason,
        "job_outcome": inp.job_outcome.value if inp.job_outcome else None,
        "follow_outcome": result.outcome.value,
        "request": inp.request.model_dump(mode="json"),
        "route": inp.route,
        "model_alias": inp.model_alias,
        "model_id": inp.model_id,
        "provider_task_id": inp.task_id,
        "provider_status": result.provider_status,
        "parameters": {
            "resolution": (task.resolution if task else None) or inp.resolution,
            "ratio": (task.ratio if task else None) or inp.ratio,
            "duration": (task.duration if task else None) or inp.duration,
            "seed": task.seed if task else None,
            "service_tier": inp.request.service_tier,
        },
        "usage": {"completion_tokens": result.tokens, "estimated_tokens": inp.estimated_tokens},
        "cost": {"amount": result.cost, "currency": result.currency, "unit_price": inp.unit_price},
        "outputs": {
            "video": result.video.model_dump(mode="json") if result.video else None,
            "last_frame": result.last_frame.model_dump(mode="json") if result.last_frame else None,
            "provider_url": task.content.video_url if task and task.content else None,
        },
        "timestamps": {
            "requested": inp.requested_at.isoformat(),
            "accepted": inp.accepted_at.isoformat(),
            "provider_created": task.created_at if task else None,
            "provider_updated": task.updated_at if task else None,
        },
        "notes": list(result.notes),
    }
