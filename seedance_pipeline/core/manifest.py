"""The reproducibility manifest stored beside each video.

Everything needed to regenerate the video or audit its cost: the full request, the exact model
ID with its date suffix, the route, every parameter the provider used, each attempt, usage,
cost, outcome and both URLs (the provider's temporary one and ours). No secrets: the callback
URL is not included, and nothing here comes from the worker's environment.
"""

from __future__ import annotations

from typing import Any

from seedance_pipeline.core.models import GenerationRequest, JobRecord

MANIFEST_VERSION = 1


def build_manifest(record: JobRecord, request: GenerationRequest) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "job_id": record.job_id,
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
