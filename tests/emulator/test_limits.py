"""The published limits are the emulator's defaults (reference section 0, C3, C4): per model
10 running (over it: `queued`) and 600 creates a minute, 120 queued per account over every
model; `account="individual"` is 3 / 180. Each limit's 429 carries its own code; the admin
stats show what the limits did.

The emulators here are started with their default limits; only timing, the media cache and
(where a test says so) the limits themselves are set.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seedance_pipeline.emulator.config import EmulatorConfig
from seedance_pipeline.emulator.testing import EmulatorHandle, running_emulator
from tests.emulator.conftest import CREATE, M20, M20_MINI, body, create, get

STUCK = [{"kind": "stuck", "match": {"prompt_contains": "hold a slot"}}]
QUEUE_CAP = "RateLimitExceeded.QueuedTaskLimitExceeded"
RPM = "ModelAccountRpmRateLimitExceeded"


async def _emulator(data: Path, **config: Any) -> AsyncIterator[EmulatorHandle]:
    async with running_emulator(EmulatorConfig(data_dir=data, prewarm_media=False, **config)) as h:
        yield h


@pytest.fixture
async def default_emu(media_dir: Path) -> AsyncIterator[EmulatorHandle]:
    """Started with no limit flags (the published enterprise limits)."""
    async for handle in _emulator(media_dir):
        yield handle


@pytest.fixture
async def individual_emu(media_dir: Path) -> AsyncIterator[EmulatorHandle]:
    async for handle in _emulator(media_dir, account="individual"):
        yield handle


async def _fill_running(emu: EmulatorHandle, c: httpx.AsyncClient, n: int) -> list[str]:
    """`n` tasks of one model that start and then hold their slots (a `stuck` fault)."""
    await emu.aset_faults(STUCK)
    ids = [await create(c, body(M20, prompt=f"hold a slot {i}")) for i in range(n)]
    await emu.aadvance_clock(3)  # past queue_seconds (2 s): they start
    assert {(await get(c, t))["status"] for t in ids} == {"running"}
    return ids


async def _burst(c: httpx.AsyncClient, payloads: list[dict[str, Any]]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(8)

    async def one(payload: dict[str, Any]) -> httpx.Response:
        async with gate:
            return await c.post(CREATE, json=payload)

    return list(await asyncio.gather(*(one(p) for p in payloads)))


async def test_defaults_keep_the_11th_task_of_a_model_queued(default_emu: EmulatorHandle) -> None:
    async with default_emu.async_client() as c:
        await _fill_running(default_emu, c, 10)
        eleventh = await create(c, body(M20, prompt="the eleventh"))
        other_model = await create(c, body(M20_MINI, prompt="another model"))
        await default_emu.aadvance_clock(60)
        assert (await get(c, eleventh))["status"] == "queued"
        assert (await get(c, other_model))["status"] != "queued"  # its own 10 slots
        stats = (await default_emu.astats())["capacity"]
    assert stats["limits"]["concurrency_per_model"] == 10
    assert stats["models"][M20]["running"] == 10
    assert stats["models"][M20]["queued"] == 1
    assert stats["models"][M20]["peak_running"] == 10


async def test_defaults_refuse_the_121st_queued_task(default_emu: EmulatorHandle) -> None:
    async with default_emu.async_client() as c:
        await _fill_running(default_emu, c, 10)
        accepted = await _burst(c, [body(M20, prompt=f"queued {i}") for i in range(120)])
        assert [r.status_code for r in accepted] == [200] * 120
        # The cap counts the account: another model does not get round it (C4).
        refused = await c.post(CREATE, json=body(M20_MINI, prompt="the 121st"))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert (error["code"], error["type"]) == (QUEUE_CAP, "TooManyRequests")
        assert "120 queued tasks" in error["message"]
        assert "retry-after" not in refused.headers  # only with retry_after=True
        # Cancelling a queued task frees its place at once.
        first = accepted[0].json()["id"]
        assert (await c.delete(f"{CREATE}/{first}")).status_code == 200
        assert (await c.post(CREATE, json=body(M20_MINI))).status_code == 200
        stats = (await default_emu.astats())["capacity"]
    assert stats["queued_total"] == 120
    assert stats["rate_limited"] == {QUEUE_CAP: 1}


async def test_defaults_refuse_the_601st_create_of_a_model_in_a_minute(
    default_emu: EmulatorHandle,
) -> None:
    """RPM is checked first, so creates refused by the queued cap still count."""
    async with default_emu.async_client() as c:
        answers = await _burst(c, [body(M20, prompt=f"rpm {i}") for i in range(600)])
        assert {r.status_code for r in answers} == {200, 429}
        assert {r.json()["error"]["code"] for r in answers if r.status_code == 429} == {QUEUE_CAP}
        over = await c.post(CREATE, json=body(M20))
        assert over.status_code == 429
        assert over.json()["error"]["code"] == RPM
        assert "limit of 600" in over.json()["error"]["message"]
        # Another model has its own window; a minute later the model has room again.
        assert (await c.post(CREATE, json=body(M20_MINI))).status_code in (200, 429)
        await default_emu.aadvance_clock(61)
        again = await c.post(CREATE, json=body(M20))
        assert again.json().get("error", {}).get("code") != RPM


async def test_individual_preset_runs_3_and_queues_the_4th(individual_emu: EmulatorHandle) -> None:
    async with individual_emu.async_client() as c:
        await _fill_running(individual_emu, c, 3)
        fourth = await create(c, body(M20, prompt="the fourth"))
        await individual_emu.aadvance_clock(60)
        assert (await get(c, fourth))["status"] == "queued"
        limits = (await individual_emu.astats())["capacity"]["limits"]
    assert (limits["account"], limits["concurrency_per_model"]) == ("individual", 3)
    assert (limits["rpm_per_model"], limits["queued_per_account"]) == (180, 120)


async def test_individual_preset_refuses_the_181st_create_in_a_minute(
    individual_emu: EmulatorHandle,
) -> None:
    async with individual_emu.async_client() as c:
        answers = await _burst(c, [body(M20, prompt=f"rpm {i}") for i in range(180)])
        assert all(r.json().get("error", {}).get("code") != RPM for r in answers)
        over = await c.post(CREATE, json=body(M20))
    assert over.status_code == 429
    assert over.json()["error"]["code"] == RPM
    assert "limit of 180" in over.json()["error"]["message"]


async def test_retry_after_is_sent_only_when_asked(media_dir: Path) -> None:
    async for emu in _emulator(media_dir, rpm_per_model=1, retry_after=True):
        async with emu.async_client() as c:
            assert (await c.post(CREATE, json=body())).status_code == 200
            over = await c.post(CREATE, json=body())
        assert over.status_code == 429
        assert 1 <= int(over.headers["retry-after"]) <= 60


async def test_endpoint_ids_get_the_endpoint_rpm_code(media_dir: Path) -> None:
    async for emu in _emulator(media_dir, rpm_per_model=1, endpoints={"ep-20260101-abcde": M20}):
        async with emu.async_client() as c:
            assert (await c.post(CREATE, json=body("ep-20260101-abcde"))).status_code == 200
            over = await c.post(CREATE, json=body("ep-20260101-abcde"))
        assert over.json()["error"]["code"] == "RateLimitExceeded.EndpointRPMExceeded"


async def test_waiting_tasks_start_in_order_when_a_slot_frees(media_dir: Path) -> None:
    """A clock jump gives the times waiting would have: each starts as the one before ends."""
    config = {"concurrency_per_model": 1, "queue_seconds": 0, "run_seconds": 100}
    async for emu in _emulator(media_dir, **config):
        async with emu.async_client() as c:
            ids = [await create(c, body(prompt=f"in order {i}")) for i in range(3)]
            await emu.aadvance_clock(1)
            assert [(await get(c, t))["status"] for t in ids] == ["running", "queued", "queued"]
            await emu.aadvance_clock(1000)
            done = [await get(c, t) for t in ids]
            series = (await emu.aadmin("GET", "/_emulator/capacity"))["series"]
    assert [t["status"] for t in done] == ["succeeded"] * 3
    assert [t["updated_at"] - t["created_at"] for t in done] == [100, 200, 300]
    assert max(point["running"] for point in series) == 1
    assert any(point["queued"] == 2 for point in series)


async def test_4k_runs_one_at_a_time_apart_from_the_models_other_tasks(media_dir: Path) -> None:
    async for emu in _emulator(media_dir, queue_seconds=0, run_seconds=100):
        async with emu.async_client() as c:
            first = await create(c, body(M20, resolution="4k"))
            second = await create(c, body(M20, resolution="4k"))
            hd = await create(c, body(M20, resolution="720p"))
            await emu.aadvance_clock(1)
            statuses = [(await get(c, t))["status"] for t in (first, second, hd)]
    assert statuses == ["running", "queued", "running"]


async def test_unlimited_says_so_and_runs_everything(media_dir: Path) -> None:
    async for emu in _emulator(media_dir, unlimited=True, queue_seconds=0, run_seconds=100):
        async with emu.async_client() as c:
            ids = [await create(c, body(prompt=f"free {i}")) for i in range(12)]
            await emu.aadvance_clock(1)
            assert {(await get(c, t))["status"] for t in ids} == {"running"}
            limits = (await emu.astats())["capacity"]["limits"]
        assert limits["concurrency_per_model"] is None
        assert limits["queued_per_account"] is None
