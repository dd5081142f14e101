"""The reference limits of reference section 0, C9, through `check_references` against a
loopback file server: a 150 MB reference video passes, a 250 MB one is refused naming the
200 MB limit; base64 audio is accepted (and still checked), base64 video is not."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.references import ReferenceActivities
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import (
    CheckReferencesInput,
    GenerationRequest,
    Reference,
    ReferenceKind,
    ReferenceRole,
)
from seedance_pipeline.core.validation import validate_request
from tests.webhook.support import serve

MB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


async def _video(request: Request) -> StreamingResponse:
    size = int(request.path_params["mb"]) * MB

    async def body() -> AsyncIterator[bytes]:
        yield MP4_HEAD
        chunk = bytes(MB)
        left = size - len(MP4_HEAD)
        while left > 0:
            yield chunk[: min(MB, left)]
            left -= MB

    return StreamingResponse(body(), media_type="video/mp4", headers={"Content-Length": str(size)})


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with serve(Starlette(routes=[Route("/{mb:int}.mp4", _video)])) as url:
        yield url


async def _check(video_url: str) -> list[int | None]:
    settings = load_settings(references={"allow_private_hosts": True})
    request = GenerationRequest(
        prompt="x", references=(Reference(kind=ReferenceKind.VIDEO, url=video_url),)
    )
    async with httpx.AsyncClient() as http:
        checked = await ActivityEnvironment().run(
            ReferenceActivities(http, settings).check_references,
            CheckReferencesInput(job_id="job-refs", request=request),
        )
    return [c.size for c in checked]


async def test_a_150_mb_reference_video_passes(files: str) -> None:
    assert await _check(f"{files}/150.mp4") == [150 * MB]


async def test_a_250_mb_reference_video_is_refused_naming_the_limit(files: str) -> None:
    with pytest.raises(ApplicationError) as caught:
        await _check(f"{files}/250.mp4")
    assert caught.value.type == et.REFERENCE_INVALID
    assert caught.value.non_retryable
    assert "262,144,000 bytes; the video limit is 209,715,200 bytes" in str(caught.value)


def _wav() -> bytes:
    return b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + bytes(28)


async def test_base64_audio_is_accepted_and_checked() -> None:
    settings = load_settings()
    audio = Reference(
        kind=ReferenceKind.AUDIO,
        url="data:audio/wav;base64," + base64.b64encode(_wav()).decode(),
    )
    image = Reference(url="asset://asset-20260101-abcde", role=ReferenceRole.REFERENCE_IMAGE)
    request = GenerationRequest(prompt="x", model="pro", references=(image, audio))
    assert validate_request(request, settings) == []
    async with httpx.AsyncClient() as http:
        checked = await ActivityEnvironment().run(
            ReferenceActivities(http, settings).check_references,
            CheckReferencesInput(job_id="job-audio", request=request),
        )
    assert checked[1].content_type == "audio/wav"
    assert checked[1].size == len(_wav())


def test_base64_video_is_refused_with_the_fix() -> None:
    video = Reference(kind=ReferenceKind.VIDEO, url="data:video/mp4;base64,AAAA")
    problems = validate_request(GenerationRequest(prompt="x", references=(video,)), load_settings())
    assert [str(p) for p in problems] == [
        "references[0].url: a video reference must be an http(s) or asset:// URL "
        "(base64 is accepted for images and audio only)"
    ]


def test_inline_references_over_the_64_mb_body_limit_are_refused() -> None:
    settings = load_settings(references={"max_request_body_bytes": 1000})
    image = Reference(url="data:image/png;base64," + "A" * 2000)
    problems = validate_request(GenerationRequest(prompt="x", references=(image,)), settings)
    assert any(
        "request body limit is 1,000 bytes: pass large media by URL" in str(p) for p in problems
    )
