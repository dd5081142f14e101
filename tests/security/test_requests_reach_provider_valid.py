"""Attacks the pipeline's own request validation: generated requests (every model alias and
route, durations, resolutions, ratios, seeds, tiers, audio and camera flags, expiry,
references of every kind and role, pinned model IDs, odd prompts) go through the worker's
`resolve_model` and, when it accepts them, through `create_task` to the emulator, which
validates bodies like the real API.

Either the pipeline refuses (RequestInvalid / ConfigError naming the field) or the provider
accepts the body: the emulator counts zero 400s, so the pipeline never pays the round trip for
a request it could have refused itself.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.provider import ProviderActivities
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import CreateTaskInput, GenerationRequest, ResolveInput
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator

KEY = "ek-security-requests-0001"
FIELDS_NAMED = (
    "model",
    "route",
    "duration",
    "resolution",
    "ratio",
    "seed",
    "references",
    "prompt",
    "service_tier",
    "generate_audio",
    "camera_fixed",
    "execution_expires_after",
    "model_id",
)


def _png(width: int, height: int) -> str:
    """A real PNG header of the given size (the emulator reads inline image dimensions)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def strict_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """An emulator whose tasks never progress or render: only its validation is used."""
    with running_emulator(
        data_dir=tmp_path_factory.mktemp("strict-emulator"),
        api_keys=[KEY],
        queue_seconds=86_400,
        prewarm_media=False,
        # Hundreds of tasks that never leave `queued`: no queued cap or RPM, only validation.
        unlimited=True,
    ) as handle:
        yield handle


@pytest.fixture(scope="module")
def pipeline_settings(
    strict_provider: EmulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    routes = {name: {"base_url": strict_provider.api_base} for name in ("byteplus", "volcengine")}
    return load_settings(routes=routes, callbacks={"base_url": ""})


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARK_API_KEY", KEY)
    monkeypatch.setenv("VOLC_ARK_API_KEY", KEY)


urls = st.one_of(
    st.sampled_from(
        [
            "https://cdn.example.com/a.png",
            "https://cdn.example.com/clip.mp4",
            "https://cdn.example.com/voice.mp3",
            "http://cdn.example.com/b.jpg",
            "asset://asset-20260101-abcde",
            "ftp://cdn.example.com/a.png",
            "file:///etc/passwd",
            "cdn.example.com/a.png",
            "",
            "data:image/png;base64,AAAA",
            _png(1280, 720),
            _png(100, 100),
            _png(7000, 300),
        ]
    ),
    st.text(max_size=20),
)
references = st.fixed_dictionaries(
    {"url": urls},
    optional={
        "kind": st.sampled_from(["image", "video", "audio"]),
        "role": st.sampled_from(
            [
                "first_frame",
                "last_frame",
                "reference_image",
                "reference_video",
                "reference_audio",
            ]
        ),
    },
)
requests = st.fixed_dictionaries(
    {
        "prompt": st.one_of(
            st.sampled_from(["a red fox in snow", "", " ", "--rs 1080p --dur 5 a cat"]),
            st.text(min_size=0, max_size=60),
            st.just("x" * 5000),
        )
    },
    optional={
        "model": st.sampled_from(["mini", "fast", "pro", "ultra"]),
        "route": st.sampled_from(["byteplus", "volcengine", "moon"]),
        "duration": st.integers(-2, 20),
        "resolution": st.sampled_from(["480p", "720p", "1080p", "4k", "2k", ""]),
        "ratio": st.sampled_from(["16:9", "9:16", "4:3", "1:1", "3:4", "21:9", "adaptive", "2:1"]),
        "references": st.lists(references, max_size=6).map(tuple),
        "return_last_frame": st.booleans(),
        "seed": st.one_of(st.integers(-3, 10), st.integers(2**32 - 2, 2**32 + 1)),
        "generate_audio": st.none() | st.booleans(),
        "watermark": st.booleans(),
        "camera_fixed": st.none() | st.booleans(),
        "service_tier": st.sampled_from(["default", "flex"]),
        "execution_expires_after": st.none() | st.sampled_from([0, 3599, 3600, 86400, 259201]),
        # Pinned IDs the config knows (or that belong to the other route). An ID the config
        # does not know may still be served (an older suffix): the provider's 404 decides.
        "model_id": st.sampled_from(
            [
                "dreamina-seedance-2-0-mini-260615",
                "dreamina-seedance-2-0-260128",
                "doubao-seedance-2-0-mini-260615",
            ]
        ),
    },
)


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run, so the count below is stable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=requests)
@example(fields={"prompt": "a fox", "camera_fixed": False})
@example(
    fields={
        "prompt": "a fox",
        "model": "pro",
        "resolution": "1080p",
        "model_id": "dreamina-seedance-2-0-mini-260615",
    }
)
@example(
    fields={"prompt": "a fox", "resolution": "1080p", "model_id": "dreamina-seedance-2-0-260128"}
)
async def test_the_pipeline_refuses_or_the_provider_accepts(
    strict_provider: EmulatorHandle,
    pipeline_settings: Settings,
    tmp_path: Path,
    fields: dict[str, Any],
) -> None:
    try:
        request = GenerationRequest.model_validate(fields)
    except ValidationError:
        return  # refused at the model, with the field in the error
    async with strict_provider.async_client() as http:
        provider = ProviderActivities(ProviderClient(http), pipeline_settings)
        env = ActivityEnvironment()
        try:
            model = await env.run(
                provider.resolve_model, ResolveInput(job_id="j-req", request=request)
            )
        except ApplicationError as exc:
            assert exc.type in ("RequestInvalid", "ConfigError") and exc.non_retryable
            assert any(name in exc.message for name in FIELDS_NAMED), exc.message
            return
        create = CreateTaskInput(job_id="j-req", submit_no=1, request=request, model=model)
        try:
            result = await env.run(provider.create_task, create)
        except ApplicationError as exc:
            pytest.fail(f"the pipeline accepted {fields!r} but the provider refused: {exc}")
        assert result.task_id is not None and result.task_id.startswith("cgt-")


async def test_no_create_was_refused(strict_provider: EmulatorHandle) -> None:
    """Across every example above: creates happened, none answered 400 or 404."""
    requests = (await strict_provider.astats())["requests"]["create"]
    assert requests.get("200", 0) > 20, requests
    assert set(requests) == {"200"}, requests
