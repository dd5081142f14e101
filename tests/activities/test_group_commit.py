"""Group commit: items that arrive together go out in one call, one call per key at a time, and
every caller learns the fate of the call that carried its item."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from seedance_pipeline.activities.group_commit import GroupCommit
from seedance_pipeline.core.breaker import Breaker, HealthReport


def _report(i: int, ok: bool = True) -> HealthReport:
    return HealthReport(job_id=f"job-{i}", ok=ok, at=datetime.now(UTC))


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[tuple[str, list[str]]] = []
        self.fail = fail

    async def __call__(self, alias: str, reports: list[HealthReport]) -> Breaker:
        await asyncio.sleep(0.01)
        self.batches.append((alias, [r.job_id for r in reports]))
        if self.fail:
            raise RuntimeError("entity unreachable")
        return Breaker(model=alias, window=[r.ok for r in reports])


async def test_concurrent_reports_go_out_as_one_batch_per_model() -> None:
    send = Recorder()
    batcher = GroupCommit(send, linger=0.05, max_batch=100)
    results = await asyncio.gather(
        *(batcher.add("mini", _report(i)) for i in range(10)),
        batcher.add("fast", _report(99, ok=False)),
    )
    assert sorted(send.batches) == [
        ("fast", ["job-99"]),
        ("mini", [f"job-{i}" for i in range(10)]),
    ]
    assert all(r.model == "mini" and len(r.window) == 10 for r in results[:10])
    assert results[10].window == [False]


async def test_a_full_batch_leaves_without_waiting_and_later_reports_start_another() -> None:
    send = Recorder()
    batcher = GroupCommit(send, linger=30.0, max_batch=3)
    first = await asyncio.wait_for(
        asyncio.gather(*(batcher.add("mini", _report(i)) for i in range(3))), timeout=5
    )
    assert [len(b.window) for b in first] == [3, 3, 3]
    assert send.batches == [("mini", ["job-0", "job-1", "job-2"])]


async def test_a_failed_send_fails_every_report_it_carried() -> None:
    batcher = GroupCommit(Recorder(fail=True), linger=0.01, max_batch=100)
    outcomes = await asyncio.gather(
        *(batcher.add("mini", _report(i)) for i in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) and "unreachable" in str(o) for o in outcomes)


async def test_a_cancelled_reporter_does_not_cancel_the_batch() -> None:
    send = Recorder()
    batcher = GroupCommit(send, linger=0.05, max_batch=100)
    leaving = asyncio.create_task(batcher.add("mini", _report(1)))
    staying = asyncio.create_task(batcher.add("mini", _report(2)))
    await asyncio.sleep(0.01)
    leaving.cancel()
    breaker = await staying
    assert send.batches == [("mini", ["job-1", "job-2"])] and len(breaker.window) == 2


async def test_one_call_per_key_at_a_time_and_what_came_meanwhile_goes_next_together() -> None:
    """Temporal refuses an entity's 11th update in flight: a worker keeps one out per key."""
    started: list[list[str]] = []
    release = asyncio.Event()
    out = 0
    most = 0

    async def send(key: str, items: list[HealthReport]) -> Breaker:
        nonlocal out, most
        out += 1
        most = max(most, out)
        started.append([r.job_id for r in items])
        if len(started) == 1:
            await release.wait()
        out -= 1
        return Breaker(model=key, window=[r.ok for r in items])

    batcher: GroupCommit[HealthReport, Breaker] = GroupCommit(send, linger=0.001, max_batch=2)
    first = asyncio.create_task(batcher.add("mini", _report(0)))
    await asyncio.sleep(0.05)
    later = [asyncio.create_task(batcher.add("mini", _report(i))) for i in range(1, 6)]
    await asyncio.sleep(0.05)
    assert started == [["job-0"]]  # the rest wait for the call out, however full
    release.set()
    await asyncio.gather(first, *later)
    assert most == 1
    assert started[1:] == [[f"job-{i}" for i in range(1, 6)]]
