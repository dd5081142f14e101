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
    assert done["usage"]["total_tokens"] == 864 * 480 * 24 * 5 // 1024 == 48600


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
        (body(M20, resolution="720p", ratio="16:9", duration=5), 108000),
        (body(M20_FAST, resolution="480p", ratio="16:9", duration=4), 864 * 496 * 24 * 4 // 1024),
        (body(M10_PRO, resolution="720p", ratio="16:9", duration=5), 102960),
        (body(M10_PRO, resolution="1080p", ratio="9:16", duration=10), 1088 * 1920 * 240 // 1024),
        (body(M15, resolution="720p", ratio="21:9", duration=5), 1470 * 630 * 120 // 1024),
        (body(M10_FAST, resolution="480p", ratio="4:3", frames=49), 736 * 544 * 49 // 1024),
    ],
)
async def test_usage_follows_token_formula(
    client: httpx.AsyncClient, payload: dict[str, object], tokens: int
) -> None:
    task = await wait_status(client, await create(client, payload), "succeeded")
    assert task["usage"] == {"completion_tokens": tokens, "total_tokens": tokens}


async def test_plus_one_frame_billing(media_dir: Path) -> None:
    config = fast_config(media_dir, plus_one_frame=True)
    async with running_emulator(config) as handle, handle.async_client() as c:
        task_id = await create(c, body(M20, resolution="720p", ratio="16:9", duration=5))
        task = await wait_status(c, task_id, "succeeded")
    assert task["usage"]["total_tokens"] == 108900  # 1280x720x121/1024, the official sample


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


async def test_max_running_holds_tasks_in_queue(media_dir: Path) -> None:
    config = fast_config(media_dir, queue_seconds=0, run_seconds=100, max_running=1)
    async with running_emulator(config) as handle, handle.async_client() as c:
        first = await create(c, body())
        second = await create(c, body())
        await handle.aadvance_clock(1)
        assert [(await get(c, t))["status"] for t in (first, second)] == ["running", "queued"]
        await handle.aadvance_clock(100)
        assert [(await get(c, t))["status"] for t in (first, second)] == ["succeeded", "running"]
        await handle.aadvance_clock(101)
        assert (await get(c, second))["status"] == "succeeded"


async def test_rpm_limit_returns_429_with_retry_after(media_dir: Path) -> None:
    config = fast_config(media_dir, rpm_limit=2)
    async with running_emulator(config) as handle, handle.async_client() as c:
        assert (await c.post(CREATE, json=body())).status_code == 200
        assert (await c.post(CREATE, json=body())).status_code == 200
        resp = await c.post(CREATE, json=body())
        assert resp.status_code == 429
        err = resp.json()["error"]
        assert err["code"] == "RateLimitExceeded.EndpointRPMExceeded"
        assert err["type"] == "TooManyRequests"
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        # Another model has its own window.
        assert (await c.post(CREATE, json=body(M20_FAST))).status_code == 200
        await handle.aadvance_clock(61)
        assert (await c.post(CREATE, json=body())).status_code == 200


async def test_queued_task_cap(media_dir: Path) -> None:
    config = fast_config(media_dir, max_queued=2)
    async with running_emulator(config) as handle, handle.async_client() as c:
        first = await create(c, body(SLOW))
        await create(c, body(SLOW))
        resp = await c.post(CREATE, json=body(SLOW))
        assert resp.status_code == 429
        assert resp.json()["error"]["code"] == "RateLimitExceeded.QueuedTaskLimitExceeded"
        assert "retry-after" in resp.headers
        # Cancelling frees the slot at once.
        assert (await c.delete(f"{CREATE}/{first}")).status_code == 200
        assert (await c.post(CREATE, json=body(SLOW))).status_code == 200


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
