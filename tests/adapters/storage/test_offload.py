"""`Offload` and `batches`: order, the bound on jobs in flight, failures, and closing."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import pytest

from seedance_pipeline.adapters.offload import Offload, batches, joined


async def _stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def test_one_worker_runs_jobs_in_submission_order() -> None:
    seen: list[int] = []

    def job(n: int) -> None:
        time.sleep(0.001 * (n % 3))  # uneven durations: order must not depend on them
        seen.append(n)

    async with Offload(workers=1, depth=3, name="t") as offload:
        for n in range(50):
            await offload.submit(job, n)
        await offload.drain()
    assert seen == list(range(50))


async def test_submit_waits_while_depth_jobs_are_unfinished() -> None:
    release = threading.Event()
    started: list[int] = []

    def job(n: int) -> None:
        started.append(n)
        release.wait(10)

    async with Offload(workers=1, depth=2, name="t") as offload:
        await offload.submit(job, 1)
        await offload.submit(job, 2)
        third = asyncio.create_task(offload.submit(job, 3))
        await asyncio.sleep(0.2)
        assert not third.done(), "a third job was queued while two were unfinished"
        assert offload.pending == 2
        release.set()
        await asyncio.wait_for(third, 5)
        await offload.drain()
        assert offload.pending == 0
    assert started == [1, 2, 3]


async def test_a_failed_job_surfaces_on_the_next_submit_and_stops_the_rest() -> None:
    ran: list[int] = []

    def job(n: int) -> None:
        if n == 2:
            raise OSError("disk full")
        ran.append(n)

    with pytest.raises(OSError, match="disk full"):
        async with Offload(workers=1, depth=1, name="t") as offload:
            for n in range(10):
                await offload.submit(job, n)
            await offload.drain()
    assert ran == [0, 1]


async def test_close_waits_for_a_running_job_and_drops_queued_ones() -> None:
    finished: list[int] = []
    gate = threading.Event()

    def job(n: int) -> None:
        gate.wait(10)
        time.sleep(0.2)
        finished.append(n)

    offload = Offload(workers=1, depth=3, name="t")
    await offload.submit(job, 1)
    await offload.submit(job, 2)
    await asyncio.sleep(0.05)  # job 1 is running, job 2 queued
    gate.set()
    await offload.close()
    assert finished == [1], "close returned before the running job ended, or ran a queued one"


async def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        Offload(workers=0, depth=1, name="t")
    with pytest.raises(ValueError):
        Offload(workers=1, depth=0, name="t")


async def test_batches_group_chunks_without_losing_or_reordering_bytes() -> None:
    chunks = [bytes([n]) * (n * 7 % 13) for n in range(200)]
    got = [b async for b in batches(_stream(chunks), 40)]
    assert b"".join(joined(b) for b in got) == b"".join(chunks)
    assert all(sum(map(len, b)) >= 40 for b in got[:-1])
    assert all(chunk for b in got for chunk in b), "empty chunks are dropped"
    assert [b async for b in batches(_stream([]), 40)] == []
