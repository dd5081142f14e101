"""Fixtures for the activities' tests: a fast emulator with one succeeded task to copy from,
and moto's S3 server (shared with tests/adapters/storage)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.adapters.storage.conftest import bucket, moto_endpoint, s3
from tests.conftest import shared_media_dir

__all__ = ["bucket", "moto_endpoint", "s3"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    with running_emulator(
        data_dir=tmp_path_factory.mktemp("emulator-activities"),
        media_dir=shared_media_dir(),
        queue_seconds=0.05,
        run_seconds=0.1,
    ) as handle:
        yield handle


@pytest.fixture
def settings(emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ARK_API_KEY", emulator.api_key)
    routes = {"byteplus": {"base_url": emulator.api_base, "output_hosts": ["127.0.0.1"]}}
    return load_settings(routes=routes)


async def succeeded_task(emulator: EmulatorHandle, prompt: str, **body: Any) -> dict[str, Any]:
    """Create a task on the emulator and wait until it succeeded; its task object."""
    async with emulator.async_client() as http:
        made = await http.post(
            "/contents/generations/tasks",
            json={
                "model": "dreamina-seedance-2-0-mini-260615",
                "content": [{"type": "text", "text": prompt}],
                "resolution": "480p",
                "duration": 4,
                **body,
            },
        )
        made.raise_for_status()
        for _ in range(100):
            task: dict[str, Any] = (
                await http.get(f"/contents/generations/tasks/{made.json()['id']}")
            ).json()
            if task["status"] == "succeeded":
                return task
            await asyncio.sleep(0.05)
    raise AssertionError("the emulator's task never succeeded")
