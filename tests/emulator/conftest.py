"""Shared fixtures: one emulator for the session (reset before every test),
plus helpers to build requests and wait for task states.

Timing is kept tiny (queue 0.05 s, run 0.1 s) so tests finish quickly; the
"slow" 1.0 Lite T2V family is configured with 100 s phases so tests can walk
its lifecycle deterministically with the emulator clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedance_pipeline.emulator.config import EmulatorConfig, ModelTiming
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator

M20 = "dreamina-seedance-2-0-260128"
M20_VE = "doubao-seedance-2-0-260128"
M20_FAST = "dreamina-seedance-2-0-fast-260128"
M20_MINI = "dreamina-seedance-2-0-mini-260615"
M25 = "dreamina-seedance-2-5-260628"
M15 = "seedance-1-5-pro-251215"
M10_PRO = "seedance-1-0-pro-250528"
M10_FAST = "seedance-1-0-pro-fast-251015"
M10_LITE_T2V = "seedance-1-0-lite-t2v-250428"
M10_LITE_I2V = "seedance-1-0-lite-i2v-250428"
SLOW = M10_LITE_T2V  # 100 s queue + 100 s run in the session emulator

CREATE = "/contents/generations/tasks"


def fast_config(data_dir: Path, **overrides: Any) -> EmulatorConfig:
    """The configuration most tests run with."""
    values: dict[str, Any] = {
        "queue_seconds": 0.05,
        "run_seconds": 0.1,
        "data_dir": data_dir,
        "prewarm_media": False,
        "callback_timeout": 1.0,
        "callback_retry_interval": 0.05,
        "model_timings": {SLOW: ModelTiming(queue_seconds=100, run_seconds=100)},
        "api_keys": ["ek-emulator-local", "ek-second"],
    }
    values.update(overrides)
    return EmulatorConfig(**values)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One media cache for the whole session, so each shape is encoded once."""
    return tmp_path_factory.mktemp("emulator-data")


@pytest.fixture(scope="session")
async def shared_emulator(media_dir: Path) -> AsyncIterator[EmulatorHandle]:
    async with running_emulator(fast_config(media_dir)) as handle:
        yield handle


@pytest.fixture
async def emu(shared_emulator: EmulatorHandle) -> EmulatorHandle:
    """The session emulator, reset (tasks, stats, faults, clock) for this test."""
    await shared_emulator.areset()
    return shared_emulator


@pytest.fixture
async def client(emu: EmulatorHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with emu.async_client() as c:
        yield c


def body(model: str = M20, prompt: str = "a red fox in snow", **fields: Any) -> dict[str, Any]:
    """A minimal valid text-to-video body (480p 4 s unless overridden)."""
    out: dict[str, Any] = {
        "model": model,
        "content": [{"type": "text", "text": prompt}],
    }
    out.update(fields)
    return out


def tiny(**fields: Any) -> dict[str, Any]:
    """The cheapest output shape (1.0 Pro Fast, 480p 21:9 = 960x416, 29 frames)."""
    return body(M10_FAST, resolution="480p", ratio="21:9", frames=29, **fields)


def image(url: str = "https://example.com/a.png", role: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if role is not None:
        item["role"] = role
    return item


def video(url: str = "https://example.com/a.mp4") -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": url}, "role": "reference_video"}


def audio(url: str = "https://example.com/a.mp3") -> dict[str, Any]:
    return {"type": "audio_url", "audio_url": {"url": url}, "role": "reference_audio"}


def png_data_url(width: int, height: int) -> str:
    """A real (tiny-content) PNG of the given size as a data: URL."""
    raw = b"".join(b"\x00" + b"\x80" * (width * 3) for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


async def create(client: httpx.AsyncClient, payload: dict[str, Any]) -> str:
    resp = await client.post(CREATE, json=payload)
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["id"]
    assert isinstance(task_id, str)
    return task_id


async def get(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    resp = await client.get(f"{CREATE}/{task_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


async def wait_status(
    client: httpx.AsyncClient, task_id: str, *statuses: str, within: float = 5.0
) -> dict[str, Any]:
    """Poll GET until the task reaches one of ``statuses``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        task = await get(client, task_id)
        if task["status"] in statuses:
            return task
        if loop.time() > deadline:
            raise AssertionError(f"task {task_id} stuck in {task['status']}, wanted {statuses}")
        await asyncio.sleep(0.02)
