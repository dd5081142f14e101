"""Blocking work off the event loop, overlapped with the download and bounded in memory.

A copy used to read a chunk, hash it and write it on the event loop thread, one after the
other, so the download stood still while sha256 and the disk (or an S3 part upload) ran.
sha256, file writes and socket sends release the GIL on large buffers, so on a thread of their
own they run while the loop keeps reading. `Offload` is that thread (or a few of them): jobs run
in a private pool, at most `depth` of them unfinished, so the bytes in flight stay at
`depth x batch` whatever the difference in speed between the network and the store.

With one worker the jobs run in submission order, which is what a digest and a file need.
Closing always waits for every started job: a failed copy never leaves a thread still writing
to a temp file it has removed, or uploading a part to a multipart upload it has aborted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Offload:
    """A private thread pool with at most `depth` unfinished jobs; `async with` closes it."""

    def __init__(self, *, workers: int, depth: int, name: str) -> None:
        if workers < 1 or depth < 1:
            raise ValueError("workers and depth must be at least 1")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._pending: deque[Future[Any]] = deque()
        self._depth = depth

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet collected (the memory bound is `depth` of them)."""
        return len(self._pending)

    async def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue `fn(*args)`; first wait, oldest first, until fewer than `depth` are unfinished.

        Raises the first failure of an earlier job as soon as it is collected, so a failed
        write or part upload stops the copy instead of letting the download run on.
        """
        while len(self._pending) >= self._depth:
            await self._collect_oldest()
        future = self._pool.submit(fn, *args, **kwargs)
        self._pending.append(future)
        return future

    async def drain(self) -> None:
        """Wait for every submitted job, raising the first failure."""
        while self._pending:
            await self._collect_oldest()

    async def _collect_oldest(self) -> None:
        oldest = self._pending[0]
        await asyncio.wrap_future(oldest)  # raises the job's exception
        self._pending.popleft()

    async def close(self) -> None:
        """Drop jobs not started yet and wait for the running ones to end (never abandon one)."""
        self._pending.clear()
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    async def __aenter__(self) -> Offload:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def batches(chunks: AsyncIterator[bytes], at_least: int) -> AsyncIterator[list[bytes]]:
    """Group a stream of small chunks (httpx yields what one socket read returned, <= 64 KiB)
    into lists of at least `at_least` bytes (the last may be smaller; empty chunks dropped).

    A thread hop per 64 KiB chunk would cost more than the work it moves; a list per MiB keeps
    the hops rare without copying anything on the event loop.
    """
    batch: list[bytes] = []
    size = 0
    async for chunk in chunks:
        if not chunk:
            continue
        batch.append(chunk)
        size += len(chunk)
        if size >= at_least:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def joined(batch: list[bytes]) -> bytes:
    """One buffer for the batch (CPython drops the GIL while joining a MiB or more)."""
    return batch[0] if len(batch) == 1 else b"".join(batch)
