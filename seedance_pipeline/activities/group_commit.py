"""Group commit: items for one key that arrive within a moment go out in one call.

Both of the worker's messages to a busy entity workflow go this way: breaker health reports
(`ModelHealthWorkflow`) and capacity asks (`CapacityGateWorkflow`). Each is an update, and
Temporal allows only a few updates in flight per workflow (`history.maxInFlightUpdates`, 10 by
default): one update per job drew hundreds of refusals at a burst of 1,500 jobs. So a worker
sends at most one call per key at a time, and what arrives while it is out waits for the next
one; at load the batches grow instead of the calls. Each caller waits for the call that carried
its item, so an activity that returns has delivered it (or raises, and Temporal retries it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Batch(Generic[Item, Result]):
    done: asyncio.Future[Result]
    items: list[Item] = field(default_factory=list)
    full: asyncio.Event = field(default_factory=asyncio.Event)


class GroupCommit(Generic[Item, Result]):
    """`send(key, items)` once per batch; every caller of `add` gets that call's result."""

    def __init__(
        self,
        send: Callable[[str, list[Item]], Awaitable[Result]],
        *,
        linger: float,
        max_batch: int,
    ) -> None:
        self._send = send
        self._linger = linger
        self._max_batch = max_batch
        self._open: dict[str, _Batch[Item, Result]] = {}
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._flushers: set[asyncio.Task[None]] = set()

    async def add(self, key: str, item: Item) -> Result:
        batch = self._open.get(key)
        if batch is None:
            batch = _Batch(done=asyncio.get_running_loop().create_future())
            # Callers may all be cancelled before the send ends: mark its error as seen.
            batch.done.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._open[key] = batch
            flusher = asyncio.create_task(self._flush_later(key, batch))
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        batch.items.append(item)
        if len(batch.items) >= self._max_batch:
            batch.full.set()
        return await asyncio.shield(batch.done)

    async def _flush_later(self, key: str, batch: _Batch[Item, Result]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(batch.full.wait(), self._linger)
        previous = self._sending.get(key)
        if previous is not None:  # one call per key at a time; the batch grows meanwhile
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)
        if self._open.get(key) is batch:  # later items start the next batch
            del self._open[key]
        current = asyncio.current_task()
        if current is not None:
            self._sending[key] = current
        try:
            result = await self._send(key, list(batch.items))
        except asyncio.CancelledError:  # the worker is shutting down
            batch.done.cancel()
            raise
        except Exception as err:  # every caller sees the failure; Temporal retries them
            batch.done.set_exception(err)
        else:
            batch.done.set_result(result)
        finally:
            if self._sending.get(key) is current:
                del self._sending[key]
