"""Provider answers in the exact shapes public samples show (reference section 0, C1, C2, C5,
C11; sections 5, 6, 9). Values are the samples' own where they are facts of the shape (hosts,
query parameters, field names and types); IDs and signatures are placeholders.
"""

from __future__ import annotations

from typing import Any

TOS_QUERY = (
    "X-Tos-Algorithm=TOS4-HMAC-SHA256"
    "&X-Tos-Credential=AKLTYWJkZTExNjA1ZDUyNDc3YzhjNTM5OGIyNjBhNDcyOTQ%2F20260828"
    "%2Fap-southeast-1%2Ftos%2Frequest&X-Tos-Date=20260828T062728Z&X-Tos-Expires=86400"
    "&X-Tos-Signature=" + "0" * 64 + "&X-Tos-SignedHeaders=host"
)

SUCCEEDED_BYTEPLUS: dict[str, Any] = {
    # The vercel/ai recorded fixture (a BytePlus 1.0 Pro task), with the signed query the
    # official samples carry: outputs on Volcano Engine TOS in ap-southeast-1 (C1).
    "id": "cgt-20260828062711-hj94q",
    "model": "seedance-1-0-pro-250528",
    "status": "succeeded",
    "content": {
        "video_url": "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com"
        "/seedance-1-0-pro/recorded-video.mp4?" + TOS_QUERY,
        "last_frame_url": "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1"
        ".volces.com/seedance-1-0-pro/recorded-video_last-frame.png?" + TOS_QUERY,
    },
    "usage": {"completion_tokens": 19845, "total_tokens": 19845},
    "created_at": 1787869631,
    "updated_at": 1787869648,
    "seed": 17918,
    "resolution": "480p",
    "ratio": "16:9",
    "duration": 2,
    "framespersecond": 24,
    "service_tier": "default",
    "execution_expires_after": 172800,
    "draft": False,
    "priority": 0,
    "output_format": "mp4",
}

SUCCEEDED_VOLCENGINE: dict[str, Any] = {
    # The Volcengine list-doc sample shape (section 5): 108,900 tokens = 24·d+1 frames (C6).
    "id": "cgt-20250613160030-2dvd7",
    "model": "doubao-seedance-1-0-pro-250528",
    "status": "succeeded",
    "content": {
        "video_url": "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/"
        "doubao-seedance-1-0-pro/02174980163157800000000000000000000ffffac182c17b26890.mp4?"
        + TOS_QUERY.replace("ap-southeast-1", "cn-beijing")
    },
    "usage": {"completion_tokens": 108900, "total_tokens": 108900},
    "created_at": 1749801631,
    "updated_at": 1749801680,
    "seed": 10,
    "resolution": "720p",
    "ratio": "16:9",
    "duration": 5,
    "framespersecond": 24,
}

FAILED_MODERATION: dict[str, Any] = {
    # Integrators' recorded failed task (section 5): output moderation, not billed.
    "id": "cgt-20260101120000-mod01",
    "model": "dreamina-seedance-2-0-260128",
    "status": "failed",
    "error": {
        "code": "OutputVideoSensitiveContentDetected.PolicyViolation",
        "message": "The request failed because the output video may be related to copyright "
        "restrictions.",
    },
    "usage": {"completion_tokens": 0, "total_tokens": 0},
    "created_at": 1767268800,
    "updated_at": 1767268856,
}

GO_SDK_LIST: dict[str, Any] = {
    # byteplus-go-sdk-v2 `ListContentGenerationTaskItem` (C11): the error under
    # `failure_reason`, and resolution/ratio/duration may be absent.
    "total": 2,
    "items": [
        {
            "id": "cgt-20260101120500-fail2",
            "model": "dreamina-seedance-2-0-260128",
            "status": "failed",
            "failure_reason": {
                "code": "InternalServiceError",
                "message": "The service encountered an unexpected internal error.",
            },
            "usage": {"completion_tokens": 0, "total_tokens": 0},
            "created_at": 1767269100,
            "updated_at": 1767269160,
        },
        {
            "id": "cgt-20260101120600-chose",
            "model": "dreamina-seedance-2-0-260128",
            "status": "succeeded",
            "content": {
                "video_url": "https://ark-acg-ap-southeast-1.tos-ap-southeast-1.volces.com/"
                "dreamina-seedance-2-0/x.mp4?" + TOS_QUERY
            },
            "usage": {"completion_tokens": 196425, "total_tokens": 196425},
            "created_at": 1767269160,
            "updated_at": 1767269300,
            "duration": 9,  # asked -1: the chosen length (C5)
        },
    ],
}

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "rpm": (
        429,
        {
            "error": {
                "code": "ModelAccountRpmRateLimitExceeded",
                "message": "The request failed because the request rate exceeded the limit. "
                "Request id: 0217" + "a" * 48,
                "type": "TooManyRequests",
            }
        },
    ),
    "model_not_open": (
        404,
        {
            "error": {
                "code": "ModelNotOpen",
                "message": "Your account has not activated the model dreamina-seedance-2-0. "
                "Please activate the model service in the Ark Console.",
                "type": "Not Found",
            }
        },
    ),
    "input_moderation": (
        400,
        {
            "error": {
                "code": "InputImageSensitiveContentDetected.PrivacyInformation",
                "message": "The request failed because the input image 'content[1]' may contain "
                "real person.",
                "param": "content[1]",
                "type": "BadRequest",
            }
        },
    ),
}
