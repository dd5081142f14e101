"""The provider's create-task body, built from a validated request. Pure and deterministic,
so a regenerated job sends a byte-identical body (apart from the callback URL, which names the
new job).
"""

from __future__ import annotations

from typing import Any

from seedance_pipeline.core.fingerprint import Fingerprint, create_seed
from seedance_pipeline.core.models import GenerationRequest, ReferenceKind, ReferenceRole
from seedance_pipeline.core.settings import ModelSpec
from seedance_pipeline.core.validation import effective_role

ADAPTIVE = "adaptive"

_CONTENT_TYPE = {
    ReferenceKind.IMAGE: "image_url",
    ReferenceKind.VIDEO: "video_url",
    ReferenceKind.AUDIO: "audio_url",
}


def effective_resolution(request: GenerationRequest, spec: ModelSpec) -> str:
    """The resolution sent: as asked, else the model's default."""
    return request.resolution or spec.default_resolution


def effective_ratio(request: GenerationRequest, spec: ModelSpec) -> str:
    """The ratio sent: as asked; with a first-frame image and no ratio asked, `adaptive`
    (reference section 0, C8: a ratio other than the image's centre-crops it, so a portrait
    first frame sent as 16:9 loses most of the picture); else the model's default."""
    if request.ratio is not None:
        return request.ratio
    images = sum(1 for r in request.references if r.kind == ReferenceKind.IMAGE)
    first_frame = any(
        effective_role(r, images) == ReferenceRole.FIRST_FRAME for r in request.references
    )
    if first_frame and ADAPTIVE in spec.ratios:
        return ADAPTIVE
    return spec.default_ratio


def build_create_body(
    request: GenerationRequest,
    model_id: str,
    resolution: str,
    ratio: str,
    callback_url: str | None,
    fingerprint: Fingerprint | None = None,
) -> dict[str, Any]:
    """JSON-field style (strictly validated by 2.x models), None fields left out like the SDKs.

    With a `fingerprint`, a request that leaves `seed` at -1 sends the create's derived seed
    (`core.fingerprint`), which the provider echoes in the task object."""
    images = sum(1 for r in request.references if r.kind == ReferenceKind.IMAGE)
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
    for ref in request.references:
        kind = _CONTENT_TYPE[ref.kind]
        content.append(
            {"type": kind, kind: {"url": ref.url}, "role": effective_role(ref, images).value}
        )
    body: dict[str, Any] = {
        "model": model_id,
        "content": content,
        "resolution": resolution,
        "ratio": ratio,
        "duration": request.duration,
        "seed": create_seed(request, fingerprint),
        "watermark": request.watermark,
        "return_last_frame": request.return_last_frame,
        "service_tier": request.service_tier,
    }
    optional = {
        "generate_audio": request.generate_audio,
        "camera_fixed": request.camera_fixed,
        "execution_expires_after": request.execution_expires_after,
        "callback_url": callback_url,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body
