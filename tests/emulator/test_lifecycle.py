"""Task lifecycle on the emulator clock, billing, expiry and the configured limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from seedance_pipeline.emulator.config import ModelTiming
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.emulator.conftest import (
    CREATE,
    M10_FAST,
    M10_PRO,
    M15,
    M20,
    M20_FAST,
    SLOW,
    body,
    create,
    fast_config,
    get,
    wait_status,
)


async def test_lifecycle_follows_the_clock(emu: EmulatorHandle, client: httpx.AsyncClient) -> None:
    task_id = await create(client, body(SLOW, resolution="480p", duration=5))
    created = await get(client, task_id)
    assert created["status"] == "queued"
    await emu.aadvance_clock(99)
    assert (await get(client, task_id))["status"] == "queued"
    await emu.aadvance_clock(2)
    running = await get(client, task_id)
    assert running["status"] == "running"
    assert running["updated_at"] - created["created_at"] in (99, 100, 101)
    assert running["usage"]["total_tokens"] == 0
    await emu.aadvance_clock(100)
    done = await get(client, task_id)
    assert done["status"] == "succeeded"
    assert done["updated_at"] - created["created_at"] in (199, 200, 201)
    assert done["usage"]["total_tokens"] == 864 * 480 * 121 // 1024 == 49005  # 24·d+1 (C6)


async def test_big_clock_jump_passes_through_all_states(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body(SLOW))
    await emu.aadvance_clock(10_000)
    task = await get(client, task_id)
    assert task["status"] == "succeeded"
    assert task["updated_at"] - task["created_at"] in (199, 200, 201)


@pytest.mark.parametrize(
    ("payload", "tokens"),
    [
        (body(M20, resolution="720p", ratio="16:9", duration=5), 108900),
        (body(M20_FAST, resolution="480p", ratio="16:9", duration=4), 864 * 496 * 97 // 1024),
        (body(M10_PRO, resolution="720p", ratio="16:9", duration=5), 1248 * 704 * 121 // 1024),
        (body(M10_PRO, resolution="1080p", ratio="9:16", duration=10), 1088 * 1920 * 241 // 1024),
        (body(M15, resolution="720p", ratio="21:9", duration=5), 1470 * 630 * 121 // 1024),
        (body(M10_FAST, resolution="480p", ratio="4:3", frames=49), 736 * 544 * 49 // 1024),
    ],
)
async def test_usage_follows_token_formula(
    client: httpx.AsyncClient, payload: dict[str, object], tokens: int
) -> None:
    task = await wait_status(client, await create(client, payload), "succeeded")
    assert task["usage"] == {"completion_tokens": tokens, "total_tokens": tokens}


async def test_bills_24d_plus_1_frames_unless_told_otherwise(media_dir: Path) -> None:
    payload = body(M20, resolution="720p", ratio="16:9", duration=5)
    async with running_emulator(fast_config(media_dir)) as handle, handle.async_client() as c:
        task = await wait_status(c, await create(c, payload), "succeeded")
    assert task["usage"]["total_tokens"] == 108900  # 1280x720x121/1024, the official sample
    config = fast_config(media_dir, plus_one_frame=False)
    async with running_emulator(config) as handle, handle.async_client() as c:
        task = await wait_status(c, await create(c, payload), "succeeded")
    assert task["usage"]["total_tokens"] == 108000  # the plain formula, 24·d


async def test_execution_expires_after_while_queued_and_running(media_dir: Path) -> None:
    config = fast_config(
        media_dir,
        queue_seconds=5000,
        model_timings={M10_PRO: ModelTiming(queue_seconds=1000, run_seconds=5000)},
    )
    async with running_emulator(config) as handle, handle.async_client() as c:
        in_queue = await create(c, body(M20, execution_expires_after=3600, callback_url=None))
        in_run = await create(c, body(M10_PRO, execution_expires_after=3600))
        default = await create(c, body(M20))
        await handle.aadvance_clock(1500)
        assert (await get(c, in_run))["status"] == "running"
        await handle.aadvance_clock(2200)
        for task_id in (in_queue, in_run):
            task = await get(c, task_id)
            assert task["status"] == "expired"
            assert task["usage"]["total_tokens"] == 0
            assert task["error"]["code"] == "TaskExpired"
            assert task["error"]["message"]
            assert task["updated_at"] - task["created_at"] in (3599, 3600, 3601)
            assert "content" not in task
        assert (await get(c, default))["status"] == "queued"  # 172800 s default budget


async def test_flex_queue_factor_and_endpoint_ids(media_dir: Path) -> None:
    config = fast_config(
        media_dir,
        queue_seconds=10,
        run_seconds=10,
        flex_queue_factor=100,
        endpoints={"ep-20260101-abcde": M10_PRO},
    )
    async with running_emulator(config) as handle, handle.async_client() as c:
        flex = await create(c, body(M10_PRO, service_tier="flex"))
        via_endpoint = await create(c, body("ep-20260101-abcde"))
        await handle.aadvance_clock(30)
        assert (await get(c, flex))["status"] == "queued"
        task = await get(c, via_endpoint)
        assert task["status"] == "succeeded"
        assert task["model"] == M10_PRO
        listed = (await c.get(CREATE, params={"filter.model": "ep-20260101-abcde"})).json()
        assert [t["id"] for t in listed["items"]] == [via_endpoint]
        await handle.aadvance_clock(1000)
        assert (await get(c, flex))["status"] == "succeeded"


async def test_jitter_varies_timing(media_dir: Path) -> None:
    config = fast_config(media_dir, queue_seconds=100, run_seconds=100, jitter=0.5, fault_seed=7)
    async with running_emulator(config) as handle, handle.async_client() as c:
        ids = [await create(c, body()) for _ in range(20)]
        await handle.aadvance_clock(100)
        statuses = {(await get(c, t))["status"] for t in ids}
    assert statuses == {"queued", "running"}
