"""Callback delivery: one POST per status change with the task body, terminal retries."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from seedance_pipeline.emulator.testing import (
    CallbackReceiver,
    EmulatorHandle,
    ReceivedCallback,
    callback_receiver,
    running_emulator,
)
from tests.emulator.conftest import M20, SLOW, body, create, fast_config, get, wait_status

_paths = itertools.count()


@dataclass
class Hook:
    """A unique callback URL on the shared receiver, and its deliveries."""

    receiver: CallbackReceiver
    path: str

    @property
    def url(self) -> str:
        return self.receiver.url + self.path

    def got(self) -> list[ReceivedCallback]:
        return self.receiver.snapshot(self.path)

    async def wait(
        self, predicate: Callable[[list[ReceivedCallback]], bool], within: float = 5.0
    ) -> list[ReceivedCallback]:
        return await self.receiver.await_for(predicate, within, path=self.path)

    async def statuses_until(self, final: str, within: float = 5.0) -> list[str]:
        got = await self.wait(lambda r: any(c.body["status"] == final for c in r), within)
        return [c.body["status"] for c in got]


@pytest.fixture(scope="session")
def shared_receiver() -> Iterator[CallbackReceiver]:
    with callback_receiver() as receiver:
        yield receiver


@pytest.fixture
def hook(shared_receiver: CallbackReceiver) -> Hook:
    shared_receiver.scripts.clear()
    shared_receiver.delay = 0.0
    return Hook(shared_receiver, f"/hook{next(_paths)}")


async def test_callback_on_each_status_with_full_task_body(
    emu: EmulatorHandle, client: httpx.AsyncClient, hook: Hook
) -> None:
    task_id = await create(client, body(M20, callback_url=hook.url, return_last_frame=True))
    statuses = await hook.statuses_until("succeeded")
    assert statuses == ["queued", "running", "succeeded"]
    final = hook.got()[-1].body
    assert final == await get(client, task_id)  # same object as GET
    assert final["content"]["video_url"] and final["content"]["last_frame_url"]
    assert [c.body["id"] for c in hook.got()] == [task_id] * 3
    stats = await emu.astats()
    assert stats["callbacks"]["attempted"] == 3
    assert stats["callbacks"]["succeeded"] == 3


async def test_failed_and_expired_tasks_call_back(
    emu: EmulatorHandle, client: httpx.AsyncClient, hook: Hook
) -> None:
    await emu.aset_faults([{"kind": "output_moderation", "match": {"prompt_contains": "bad"}}])
    await create(client, body(prompt="bad scene", callback_url=hook.url))
    assert (await hook.statuses_until("failed"))[-1] == "failed"
    failed = hook.got()[-1].body
    assert failed["error"]["code"] == "OutputVideoSensitiveContentDetected.PolicyViolation"
    assert failed["usage"]["total_tokens"] == 0

    await emu.aset_faults([{"kind": "expire"}])
    await create(client, body(SLOW, callback_url=hook.url))
    await emu.aadvance_clock(4000)
    expired = await hook.wait(lambda r: any(c.body["status"] == "expired" for c in r))
    assert expired[-1].body["error"]["code"] == "TaskExpired"


async def test_terminal_callback_is_retried_until_2xx(
    emu: EmulatorHandle, client: httpx.AsyncClient, hook: Hook
) -> None:
    hook.receiver.respond_with(500, 503, for_status="succeeded")
    task_id = await create(client, body(callback_url=hook.url))
    got = await hook.wait(lambda r: [c.status_returned for c in r][-1:] == [200] and len(r) >= 5)
    succeeded = [c for c in got if c.body["status"] == "succeeded"]
    assert [c.status_returned for c in succeeded] == [500, 503, 200]
    assert all(c.body["id"] == task_id for c in succeeded)
    stats = await emu.astats()
    assert stats["callbacks"]["failed"] == 2
    assert stats["callbacks"]["succeeded"] == 3
    log = (await emu.aadmin("GET", "/_emulator/callbacks"))["attempts"]
    assert [a["attempt"] for a in log if a["status"] == "succeeded"] == [1, 2, 3]


async def test_terminal_retries_stop_after_three(
    emu: EmulatorHandle, client: httpx.AsyncClient, hook: Hook
) -> None:
    hook.receiver.respond_with(500, 500, 500, 500, 500, for_status="succeeded")
    await create(client, body(callback_url=hook.url))
    await hook.wait(lambda r: sum(c.body["status"] == "succeeded" for c in r) >= 4)
    stats = await emu.astats()
    for _ in range(50):
        if stats["callbacks"]["gave_up"]:
            break
        stats = await emu.astats()
    assert stats["callbacks"]["gave_up"] == 1
    assert sum(c.body["status"] == "succeeded" for c in hook.got()) == 4  # 1 + 3 retries


async def test_non_terminal_callbacks_are_not_retried(
    emu: EmulatorHandle, client: httpx.AsyncClient, hook: Hook
) -> None:
    hook.receiver.respond_with(500, for_status="running")
    await create(client, body(callback_url=hook.url))
    statuses = await hook.statuses_until("succeeded")
    assert statuses == ["queued", "running", "succeeded"]


async def test_callback_timeout_counts_as_failure_and_retries(media_dir: Path) -> None:
    config = fast_config(media_dir, callback_timeout=0.2, callback_retries=1)
    with callback_receiver() as receiver:
        receiver.delay = 0.5
        async with running_emulator(config) as handle, handle.async_client() as c:
            await create(c, body(callback_url=receiver.url + "/slow"))
            await receiver.await_for(
                lambda r: sum(x.body["status"] == "succeeded" for x in r) >= 2, within=5
            )
            log = (await handle.aadmin("GET", "/_emulator/callbacks"))["attempts"]
    terminal = [a for a in log if a["status"] == "succeeded"]
    assert [a["attempt"] for a in terminal] == [1, 2]
    assert all(a["outcome"] == "timeout" for a in terminal)


async def test_unreachable_callback_does_not_block_the_api(
    emu: EmulatorHandle, client: httpx.AsyncClient
) -> None:
    task_id = await create(client, body(callback_url="http://127.0.0.1:9/nowhere"))
    task = await wait_status(client, task_id, "succeeded", within=3)
    assert task["status"] == "succeeded"
