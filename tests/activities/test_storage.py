"""`copy_output` with the shipped output-host allow-list, end to end against the emulator:
the emulator serves outputs under the provider's real TOS host names, and the emulated
stack's download client connects those names to the emulator (`storage.resolve_hosts`),
so the copy path runs with the shipped allow-list, unchanged. A `127.0.0.1` URL is refused
on the shipped config and accepted only where a stack adds loopback on top of it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.storage import StorageActivities
from seedance_pipeline.adapters.host_map import transport_for
from seedance_pipeline.adapters.object_store import open_store
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import CopyOutputInput
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.config import DEFAULT_TOS_HOSTS
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator

LIMITS = httpx.Limits(max_connections=10)


@pytest_asyncio.fixture(scope="module")
async def emulator(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmulatorHandle]:
    async with running_emulator(
        data_dir=tmp_path_factory.mktemp("emu"),
        prewarm_media=False,
        queue_seconds=0,
        run_seconds=0,
        tos_urls=True,
    ) as handle:
        yield handle


async def _succeeded_url(emulator: EmulatorHandle, model: str) -> str:
    async with emulator.async_client() as c:
        body = {
            "model": model,
            "content": [{"type": "text", "text": "copy me"}],
            "resolution": "480p",
            "duration": 4,
        }
        task_id = (await c.post("/contents/generations/tasks", json=body)).json()["id"]
        task = (await c.get(f"/contents/generations/tasks/{task_id}")).json()
    assert task["status"] == "succeeded", task
    return str(task["content"]["video_url"])


def _emulated(emulator: EmulatorHandle, tmp_path: Path) -> Settings:
    """The shipped allow-list plus the emulated stack's host mapping, nothing else."""
    return load_settings(
        storage={
            "uri": str(tmp_path / "out"),
            "resolve_hosts": {host: str(emulator) for host in DEFAULT_TOS_HOSTS.values()},
        }
    )


async def _copy(settings: Settings, route: str, url: str) -> tuple[int, str]:
    transport = transport_for(settings.storage.resolve_hosts, limits=LIMITS)
    async with httpx.AsyncClient(transport=transport) as http:
        acts = StorageActivities(http, open_store(settings.storage.uri), settings)
        stored = await ActivityEnvironment().run(
            acts.copy_output,
            CopyOutputInput(
                job_id="job-copy",
                route=route,
                url=url,
                kind="video",
                requested_at=datetime(2026, 12, 1, tzinfo=UTC),
            ),
        )
    return stored.size, stored.sha256


@pytest.mark.parametrize(
    ("route", "model"),
    [("byteplus", "dreamina-seedance-2-0-260128"), ("volcengine", "doubao-seedance-2-0-260128")],
)
async def test_tos_hosted_output_is_copied_with_the_shipped_allow_list(
    emulator: EmulatorHandle, tmp_path: Path, route: str, model: str
) -> None:
    url = await _succeeded_url(emulator, model)
    assert urlsplit(url).hostname == DEFAULT_TOS_HOSTS[route]
    settings = _emulated(emulator, tmp_path)
    assert settings.route(route).output_hosts == load_settings().route(route).output_hosts
    size, sha = await _copy(settings, route, url)
    async with httpx.AsyncClient(base_url=str(emulator)) as admin:
        path = urlsplit(url).path
        served = await admin.get(path + "?" + urlsplit(url).query)
    assert size == len(served.content) > 1000
    assert sha == hashlib.sha256(served.content).hexdigest()


async def test_a_loopback_url_is_refused_on_the_shipped_config(tmp_path: Path) -> None:
    settings = load_settings(storage={"uri": str(tmp_path)})
    with pytest.raises(ApplicationError) as caught:
        await _copy(settings, "byteplus", "http://127.0.0.1:8700/dreamina-seedance-2-0/x.mp4")
    assert caught.value.type == et.OUTPUT_HOST_REFUSED
    assert "'127.0.0.1'" in str(caught.value)


async def test_a_loopback_url_is_accepted_where_a_stack_adds_it_on_top(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    shipped = load_settings().route("byteplus").output_hosts
    settings = load_settings(
        storage={"uri": str(tmp_path)},
        routes={"byteplus": {"output_hosts": [*shipped, "127.0.0.1"]}},
    )
    tos_url = await _succeeded_url(emulator, "dreamina-seedance-2-0-260128")
    loopback = str(emulator) + tos_url.split(".volces.com", 1)[1]
    size, _ = await _copy(settings, "byteplus", loopback)
    assert size > 1000


def test_resolve_hosts_targets_must_be_addresses() -> None:
    with pytest.raises(ValueError, match="http\\(s\\)://address"):
        load_settings(storage={"resolve_hosts": {"a.example": "127.0.0.1:8700"}})
