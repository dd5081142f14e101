"""Request validation: each invalid request is refused with an error that names the field."""

from typing import Any

import pytest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, Reference
from seedance_pipeline.core.validation import validate_request

SETTINGS = load_settings()
IMG = "https://cdn.example.com/a.png"
VID = "https://cdn.example.com/a.mp4"
AUD = "https://cdn.example.com/a.mp3"


def ref(url: str = IMG, kind: str = "image", role: str | None = None) -> Reference:
    return Reference.model_validate({"kind": kind, "url": url, "role": role})


def req(**fields: Any) -> GenerationRequest:
    return GenerationRequest(**{"prompt": "a fox in snow", **fields})


INVALID: list[tuple[str, GenerationRequest, str]] = [
    ("duration-too-short", req(duration=3), "duration"),
    ("duration-too-long", req(duration=16), "duration"),
    ("duration-zero", req(duration=0), "duration"),
    ("duration-negative", req(duration=-2), "duration"),
    ("duration-huge", req(duration=3600), "duration"),
    ("resolution-1080p-on-mini", req(resolution="1080p"), "resolution"),
    ("resolution-4k", req(resolution="4k"), "resolution"),
    ("resolution-garbage", req(resolution="720"), "resolution"),
    ("ratio-unknown", req(ratio="2:1"), "ratio"),
    ("ratio-keep", req(ratio="keep_ratio"), "ratio"),
    ("seed-too-big", req(seed=2**32), "seed"),
    ("seed-too-small", req(seed=-5), "seed"),
    ("flex-on-mini", req(service_tier="flex"), "service_tier"),
    ("expires-too-short", req(execution_expires_after=60), "execution_expires_after"),
    ("expires-too-long", req(execution_expires_after=999_999), "execution_expires_after"),
    ("missing-prompt", req(prompt=""), "prompt"),
    ("blank-prompt", req(prompt="   \n\t"), "prompt"),
    ("oversized-prompt", req(prompt="x" * 4001), "prompt"),
    ("nul-in-prompt", req(prompt="a\x00b"), "prompt"),
    ("unknown-model", req(model="ultra"), "model"),
    ("unknown-route", req(route="mars"), "route"),
    ("bad-url-scheme", req(references=(ref("ftp://host/a.png"),)), "references[0].url"),
    ("url-no-scheme", req(references=(ref("cdn.example.com/a.png"),)), "references[0].url"),
    ("url-no-host", req(references=(ref("https:///a.png"),)), "references[0].url"),
    ("url-empty", req(references=(ref(" "),)), "references[0].url"),
    ("file-url", req(references=(ref("file:///etc/passwd"),)), "references[0].url"),
    (
        "base64-video",
        req(references=(ref(IMG), ref("data:video/mp4;base64,AAAA", "video"))),
        "references[1].url",
    ),
    ("bad-data-url", req(references=(ref("data:text/plain,hello"),)), "references[0].url"),
    (
        "role-video-on-image",
        req(references=(ref(IMG, role="reference_video"),)),
        "references[0].role",
    ),
    (
        "role-frame-on-video",
        req(references=(ref(VID, "video", "first_frame"),)),
        "references[0].role",
    ),
    ("last-frame-without-first", req(references=(ref(IMG, role="last_frame"),)), "references"),
    (
        "two-first-frames",
        req(references=(ref(IMG, role="first_frame"), ref(IMG, role="first_frame"))),
        "references",
    ),
    (
        "mixed-modes",
        req(references=(ref(IMG, role="first_frame"), ref(IMG, role="reference_image"))),
        "references",
    ),
    ("audio-only", req(references=(ref(AUD, "audio"),)), "references"),
    (
        "too-many-images",
        req(references=tuple(ref(IMG, role="reference_image") for _ in range(10))),
        "references",
    ),
    ("too-many-videos", req(references=tuple(ref(VID, "video") for _ in range(4))), "references"),
    (
        "too-many-audios",
        req(references=(ref(IMG, role="reference_image"), *(ref(AUD, "audio") for _ in range(4)))),
        "references",
    ),
    (
        "too-many-total",
        req(
            references=(
                *(ref(IMG, role="reference_image") for _ in range(9)),
                *(ref(VID, "video") for _ in range(3)),
                ref(AUD, "audio"),
            )
        ),
        "references",
    ),
]


@pytest.mark.parametrize(("name", "request_", "field"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_request_names_the_field(
    name: str, request_: GenerationRequest, field: str
) -> None:
    problems = validate_request(request_, SETTINGS)
    assert problems, f"{name} was accepted"
    assert any(p.field == field for p in problems), [str(p) for p in problems]


def test_at_least_thirty_distinct_cases() -> None:
    assert len({name for name, _, _ in INVALID}) >= 30


def test_messages_name_allowed_values() -> None:
    problems = validate_request(req(resolution="1080p", duration=20), SETTINGS)
    text = " ".join(str(p) for p in problems)
    assert "480p, 720p" in text
    assert "4-15" in text


@pytest.mark.parametrize(
    "request_",
    [
        req(),
        req(duration=-1),
        req(duration=15, resolution="480p", ratio="9:16"),
        req(references=(ref(IMG),)),
        req(references=(ref(IMG, role="first_frame"), ref(IMG, role="last_frame"))),
        req(references=(ref(IMG, role="reference_image"), ref(VID, "video"), ref(AUD, "audio"))),
        req(references=(ref("asset://asset-123"),)),
        req(references=(ref("data:image/png;base64,iVBORw0KGgo="),)),
        req(model="pro", resolution="1080p"),
        req(route="volcengine"),
    ],
)
def test_valid_requests_pass(request_: GenerationRequest) -> None:
    assert validate_request(request_, SETTINGS) == []
