"""Callback delivery: POST the task object to ``callback_url`` on each status change.

Reference section 8: the body is the query-task object; ``succeeded``/``failed``
(and, by assumption, ``expired``) are retried up to 3 times when no 2xx comes
back within 5 s. Deliveries run on background workers fed by a queue so they
never hold up an API response; events of one task are delivered in order
(unless a ``callback_reorder`` fault says otherwise), different tasks in
parallel. Callback faults (drop, duplicate, reorder, delay, wrong job) are
applied when an event is submitted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from seedance_pipeline.emulator.faults import (
    CallbackDelay,
    CallbackDrop,
    CallbackDuplicate,
    CallbackRuleBase,
    CallbackWrongJob,
    FaultRule,
    FaultSet,
    MatchContext,
)
from seedance_pipeline.emulator.stats import Stats

log = logging.getLogger("emulator.callbacks")

RETRIED_STATUSES = frozenset({"succeeded", "failed", "expired"})
CALLBACK_FAULT_KINDS = frozenset(
    {"callback_drop", "callback_duplicate", "callback_delay", "callback_wrong_job"}
)
USER_AGENT = "ark-callback-emulator/1.0"


@dataclass
class Delivery:
    """One callback to send (and maybe retry)."""

    task_id: str
    url: str
    status: str
    body: dict[str, Any]
    generation: int
    note: str | None = None


@dataclass
class AttemptLog:
    """One HTTP attempt, as shown by ``GET /_emulator/callbacks``."""

    task_id: str
    url: str
    status: str
    attempt: int
    outcome: str
    http_status: int | None
    at: float
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class _Held:
    """Non-terminal events held back for a task under ``callback_reorder``."""

    events: list[Delivery] = field(default_factory=list)


class CallbackDispatcher:
    """Queue + worker pool that delivers callbacks with the provider's retry rules."""

    def __init__(
        self,
        stats: Stats,
        faults: FaultSet,
        *,
        timeout: float,
        retries: int,
        retry_interval: float,
        concurrency: int,
        other_callback_url: Callable[[str, str], str | None],
        log_size: int = 10000,
    ) -> None:
        self.stats = stats
        self.faults = faults
        self.timeout = timeout
        self.retries = retries
        self.retry_interval = retry_interval
        self.concurrency = concurrency
        self.other_callback_url = other_callback_url
        self.log: deque[AttemptLog] = deque(maxlen=log_size)
        self._queue: asyncio.Queue[Delivery] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._held: dict[str, _Held] = {}
        self._client: httpx.AsyncClient | None = None
        self._generation = 0

    async def start(self) -> None:
        """Create the HTTP client and the worker tasks (inside the server's loop)."""
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=max(self.concurrency * 2, 10)),
        )
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        """Cancel workers and close the client; pending deliveries are dropped."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def reset(self) -> None:
        """Forget held events and the log; deliveries already queued are discarded."""
        self._generation += 1
        self._held.clear()
        self._locks.clear()
        self.log.clear()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # -- submission (synchronous, called from state transitions) -------------

    def submit(
        self, task_id: str, url: str, body: dict[str, Any], ctx: MatchContext, reorder: bool
    ) -> None:
        """Queue the callback for a status change, applying callback faults."""
        status = str(body.get("status"))
        delivery = Delivery(task_id, url, status, body, self._generation)
        terminal = status in RETRIED_STATUSES
        if reorder:
            held = self._held.setdefault(task_id, _Held())
            if not terminal:
                held.events.append(delivery)
                return
            self._held.pop(task_id, None)
            self._apply_faults_and_enqueue(delivery, ctx)
            for ev in held.events:
                ev.note = "reordered"
                self._apply_faults_and_enqueue(ev, ctx)
            return
        self._apply_faults_and_enqueue(delivery, ctx)

    def _fire(self, kind: str, ctx: MatchContext, status: str) -> FaultRule | None:
        def accept(rule: FaultRule) -> bool:
            return not isinstance(rule, CallbackRuleBase) or rule.applies_to(status)

        return self.faults.fire({kind}, ctx, accept)

    def _apply_faults_and_enqueue(self, d: Delivery, ctx: MatchContext) -> None:
        if isinstance(self._fire("callback_drop", ctx, d.status), CallbackDrop):
            self.stats.callbacks["dropped"] += 1
            self.log.append(
                AttemptLog(d.task_id, d.url, d.status, 0, "dropped by fault", None, time.time())
            )
            return
        wrong = self._fire("callback_wrong_job", ctx, d.status)
        if isinstance(wrong, CallbackWrongJob):
            other = self.other_callback_url(d.task_id, d.url)
            if other is not None:
                d.url = other
                d.note = "wrong job"
        copies = 1
        dup = self._fire("callback_duplicate", ctx, d.status)
        if isinstance(dup, CallbackDuplicate):
            copies = dup.count
        delay = 0.0
        slow = self._fire("callback_delay", ctx, d.status)
        if isinstance(slow, CallbackDelay):
            delay = slow.seconds
        for n in range(copies):
            copy = Delivery(d.task_id, d.url, d.status, d.body, d.generation, d.note)
            if n:
                copy.note = f"{d.note + ', ' if d.note else ''}duplicate {n}"
            if delay > 0:
                self._enqueue_later(copy, delay)
            else:
                self._enqueue(copy)

    def _enqueue(self, d: Delivery) -> None:
        if self._queue is None:
            log.warning("callback for %s dropped: dispatcher not started", d.task_id)
            return
        self._queue.put_nowait(d)

    def _enqueue_later(self, d: Delivery, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(handle)
            self._enqueue(d)

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    # -- delivery --------------------------------------------------------------

    async def _worker(self) -> None:
        assert self._queue is not None
        while True:
            d = await self._queue.get()
            try:
                if d.generation == self._generation:
                    lock = self._locks.setdefault(d.task_id, asyncio.Lock())
                    async with lock:
                        await self._deliver(d)
            except Exception:  # a bug here must not kill the worker
                log.exception("callback delivery crashed")
            finally:
                self._queue.task_done()

    async def _deliver(self, d: Delivery) -> None:
        assert self._client is not None
        attempts = 1 + (self.retries if d.status in RETRIED_STATUSES else 0)
        for attempt in range(1, attempts + 1):
            if d.generation != self._generation:
                return
            self.stats.callbacks["attempted"] += 1
            http_status: int | None = None
            try:
                resp = await self._client.post(d.url, json=d.body)
                http_status = resp.status_code
                ok = 200 <= resp.status_code < 300
                outcome = "ok" if ok else f"http {resp.status_code}"
            except httpx.TimeoutException:
                ok, outcome = False, "timeout"
            except httpx.HTTPError as exc:
                ok, outcome = False, f"error: {type(exc).__name__}"
            self.log.append(
                AttemptLog(
                    d.task_id, d.url, d.status, attempt, outcome, http_status, time.time(), d.note
                )
            )
            if ok:
                self.stats.callbacks["succeeded"] += 1
                return
            self.stats.callbacks["failed"] += 1
            if attempt < attempts:
                await asyncio.sleep(self.retry_interval)
        self.stats.callbacks["gave_up"] += 1

    async def drain(self) -> None:
        """Wait until the queue is empty and no delivery is in flight (tests).

        Callers bound the wait themselves (``asyncio.timeout``)."""
        if self._queue is None:
            return
        await self._queue.join()
