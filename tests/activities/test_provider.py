"""`ProviderActivities.resolve_model` and `create_task` on the shipped prices and ratio rules,
with the create sent to the emulator over loopback HTTP (what the provider would receive)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.provider import ProviderActivities
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import (
    CreateTaskInput,
    GenerationRequest,
    Reference,
    ReferenceKind,
    ReferenceRole,
    ResolvedModel,
    ResolveInput,
)
from seedance_pipeline.core.pricing import cost
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator

FIRST_FRAME = Reference(url="https://example.com/portrait.png", role=ReferenceRole.FIRST_FRAME)


@pytest_asyncio.fixture(scope="module")
async def emulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmulatorHandle]:
    async with running_emulator(
        data_dir=tmp_path_factory.mktemp("emu"), prewarm_media=False, queue_seconds=60
    ) as handle:
        yield handle


@pytest.fixture
def settings(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    return load_settings(
        routes={"byteplus": {"base_url": emulator.api_base}},
        storage={"uri": str(tmp_path)},
    )


async def _resolve(settings: Settings, request: GenerationRequest) -> ResolvedModel:
    async with httpx.AsyncClient() as http:
        acts = ProviderActivities(ProviderClient(http), settings)
        return await ActivityEnvironment().run(
            acts.resolve_model, ResolveInput(job_id="job-1", request=request)
        )


async def test_pro_at_1080p_resolves_to_the_1080p_price(settings: Settings) -> None:
    request = GenerationRequest(prompt="a fox", model="pro", duration=5, resolution="1080p")
    model = await _resolve(settings, request)
    assert (model.price_per_million, model.price_per_million_video_input) == (7.7, 4.7)
    assert model.unit_price == pytest.approx(7.7)
    assert model.estimated_tokens == 245_025  # 1920 x 1080 x 121 / 1024
    assert model.estimated_cost == pytest.approx(1.886693)
    # The ledger's cost of what the provider bills, with the same rate (lead's workflow).
    assert cost(245_025, model.unit_price) == model.estimated_cost


async def test_pro_at_720p_keeps_7_0_and_video_input_4_3(settings: Settings) -> None:
    video = Reference(kind=ReferenceKind.VIDEO, url="https://example.com/clip.mp4")
    request = GenerationRequest(prompt="x", model="pro", resolution="720p", references=(video,))
    model = await _resolve(settings, request)
    assert (model.price_per_million, model.price_per_million_video_input) == (7.0, 4.3)
    assert model.unit_price == pytest.approx(4.3)


async def test_duration_minus_one_is_estimated_at_the_maximum(settings: Settings) -> None:
    model = await _resolve(settings, GenerationRequest(prompt="x", model="mini", duration=-1))
    assert model.estimated_tokens == 324_900  # 15 s: 1280 x 720 x 361 / 1024


@pytest.mark.parametrize(
    ("references", "ratio", "expected"),
    [
        ((FIRST_FRAME,), None, "adaptive"),
        ((Reference(url="https://example.com/a.png"),), None, "adaptive"),  # role defaulted
        (
            (FIRST_FRAME, Reference(url="https://e.com/b.png", role=ReferenceRole.LAST_FRAME)),
            None,
            "adaptive",
        ),
        ((FIRST_FRAME,), "9:16", "9:16"),  # asked for: kept
        ((), None, "16:9"),  # text-to-video: the model's default
    ],
)
async def test_ratio_sent(
    settings: Settings, references: tuple[Reference, ...], ratio: str | None, expected: str
) -> None:
    request = GenerationRequest(prompt="x", references=references, ratio=ratio)
    assert (await _resolve(settings, request)).ratio == expected


async def test_a_first_frame_job_without_ratio_is_sent_adaptive(
    settings: Settings, emulator: EmulatorHandle
) -> None:
    """The body the provider receives, as the emulator recorded it."""
    request = GenerationRequest(prompt="first frame adaptive", references=(FIRST_FRAME,))
    model = await _resolve(settings, request)
    async with httpx.AsyncClient() as http:
        acts = ProviderActivities(ProviderClient(http), settings)
        created = await ActivityEnvironment().run(
            acts.create_task,
            CreateTaskInput(job_id="job-1", submit_no=0, request=request, model=model),
        )
    task = next(t for t in await emulator.atasks() if t["id"] == created.task_id)
    assert task["request"]["ratio"] == "adaptive"
    assert task["request"]["content"][1]["role"] == "first_frame"
