"""References are checked from the worker before any paid call; a bad one costs nothing.

A loopback file server plays the user's CDN (allowed by the test config); the default config
refuses private and loopback hosts.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from seedance_pipeline.core.models import GenerationRequest, Outcome, Reference
from tests.pipeline.conftest import PipelineFactory
from tests.webhook.support import serve

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(5000)
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(3000)


async def _file(request: Request) -> Response:
    name = request.path_params["name"]
    files = {
        "ok.png": (PNG, "image/png"),
        "octet.png": (PNG, "application/octet-stream"),
        "clip.mp4": (MP4, "video/mp4"),
        "voice.wav": (WAV, "audio/wav"),
        "page.html": (b"<html>not an image</html>", "text/html"),
        "big.png": (PNG * 20, "image/png"),
    }
    if name == "private.png":
        return Response(b"forbidden", status_code=403)
    if name == "moved.png":
        return RedirectResponse("/files/ok.png", status_code=302)
    if name not in files:
        return Response(b"missing", status_code=404)
    body, kind = files[name]
    return Response(body, media_type=kind)


@pytest.fixture(scope="module")
def cdn() -> Iterator[str]:
    app = Starlette(routes=[Route("/files/{name}", _file)])
    with serve(app) as url:
        yield f"{url}/files"


ALLOW = {"references": {"allow_private_hosts": True, "max_image_bytes": 100_000}}


async def test_checked_references_are_hashed_into_the_manifest(
    pipeline_factory: PipelineFactory, cdn: str
) -> None:
    refs = (
        Reference(url=f"{cdn}/moved.png", role="reference_image"),
        Reference(kind="video", url=f"{cdn}/clip.mp4"),
        Reference(kind="audio", url=f"{cdn}/voice.wav"),
    )
    async with pipeline_factory(**ALLOW) as pipeline:
        record = await pipeline.run(
            GenerationRequest(prompt=f"refs ok {uuid.uuid4().hex}", duration=4, references=refs)
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
    manifest = json.loads(Path(urlsplit(record.manifest_uri or "").path).read_text())
    hashes = [r["sha256"] for r in manifest["references_checked"]]
    assert hashes == [hashlib.sha256(b).hexdigest() for b in (PNG, MP4, WAV)]


@pytest.mark.parametrize(
    ("name", "kind", "reason"),
    [
        ("missing.png", "image", "404 from host 127.0.0.1"),
        ("private.png", "image", "403 from host 127.0.0.1"),
        ("page.html", "image", "content type 'text/html'"),
        ("big.png", "image", "the image limit is 100,000 bytes"),
        ("ok.png", "video", "not a supported video"),
    ],
)
async def test_bad_reference_fails_input_with_no_provider_call(
    pipeline_factory: PipelineFactory, cdn: str, name: str, kind: str, reason: str
) -> None:
    refs = (
        Reference(url=f"{cdn}/ok.png", role="reference_image"),
        Reference(
            kind=kind,
            url=f"{cdn}/{name}",
            role="reference_image" if kind == "image" else None,
        ),
    )
    async with pipeline_factory(**ALLOW) as pipeline:
        before = await pipeline.create_calls()
        record = await pipeline.run(
            GenerationRequest(prompt=f"bad ref {name}", duration=4, references=refs)
        )
        after = await pipeline.create_calls()
    assert record.outcome == Outcome.FAILED_INPUT
    assert record.error is not None
    assert record.error.message.startswith("references[1] (content[2]): "), record.error.message
    assert reason in record.error.message
    assert after == before


async def test_untyped_but_real_image_is_accepted_by_its_bytes(
    pipeline_factory: PipelineFactory, cdn: str
) -> None:
    async with pipeline_factory(**ALLOW) as pipeline:
        record = await pipeline.run(
            GenerationRequest(
                prompt=f"octet {uuid.uuid4().hex}",
                duration=4,
                references=(Reference(url=f"{cdn}/octet.png"),),
            )
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error


async def test_private_hosts_are_refused_by_default(
    pipeline_factory: PipelineFactory, cdn: str
) -> None:
    async with pipeline_factory() as pipeline:
        before = await pipeline.create_calls()
        record = await pipeline.run(
            GenerationRequest(
                prompt="private ref", duration=4, references=(Reference(url=f"{cdn}/ok.png"),)
            )
        )
        after = await pipeline.create_calls()
    assert record.outcome == Outcome.FAILED_INPUT
    assert record.error and "private address (127.0.0.1)" in record.error.message
    assert after == before
