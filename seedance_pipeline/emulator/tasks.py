"""Task records and the time-driven state machine.

A task's whole future is planned when it is created (when it starts, how long
it runs, how it ends), and :meth:`TaskStore.advance` applies every transition
whose time has come according to the emulator clock. Because the plan is fixed
up front, jumping the clock forward by a day yields exactly the states and
timestamps that waiting a day would have, and GET answers are exact even if
the background ticker is late.

Lifecycle (reference section 5)::

    queued -> running -> succeeded | failed | expired
    queued -> expired              (execution_expires_after passed while queued)
    queued -> cancelled            (DELETE)

A task ready to run waits `queued` while its model already runs as many tasks as the
concurrency limit allows (reference section 0, C3), and starts, in creation order, at the
moment a slot frees, so clock jumps still give the times waiting would have.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from seedance_pipeline.emulator.signing import UrlSigner
from seedance_pipeline.emulator.validation import DraftSource, GenerationRequest

Status = Literal["queued", "running", "succeeded", "failed", "expired", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "expired", "cancelled"})
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Outcome:
    """How a task will end, decided at creation (fault rules may change it)."""

    kind: Literal["succeed", "fail", "expire", "stuck"] = "succeed"
    code: str | None = None
    message: str | None = None
    expire_phase: Literal["queued", "running"] = "running"
    stuck_phase: Literal["queued", "running"] = "running"


@dataclass
class TaskRecord:
    """Everything the emulator knows about one task, including deleted ones."""

    id: str
    api_key: str
    request_body: dict[str, Any]
    req: GenerationRequest
    seed: int
    created_at: float
    ready_at: float
    run_seconds: float
    outcome: Outcome
    url_ttl: int
    bucket: str = ""
    """The concurrency counter it runs against (`limits.bucket`: its model, 4k apart)."""
    region: str = "byteplus"
    files_base: str | None = None
    """Base URL of its file URLs (the region's TOS host), or None for the emulator's own."""
    updated_at: float = 0.0
    status: Status = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    cancelled_at: float | None = None
    deleted_at: float | None = None
    error: dict[str, str] | None = None
    tokens: int = 0
    video_url: str | None = None
    last_frame_url: str | None = None
    url_expires_at: int | None = None
    waited_for_slot: bool = False
    callback_reorder: bool = False
    faults: list[str] = field(default_factory=list)
    user_agent: str | None = None
    client_request_id: str | None = None
    requests: Counter[str] = field(default_factory=Counter)
    """API calls that named this task (create, get, delete) and file downloads (file), so a
    benchmark can count provider calls per job without parsing logs."""

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def deadline(self) -> float:
        """When ``execution_expires_after`` runs out."""
        return self.created_at + self.req.execution_expires_after

    def to_api(self) -> dict[str, Any]:
        """The task object exactly as GET, list and callbacks show it (section 5)."""
        r = self.req
        out: dict[str, Any] = {
            "id": self.id,
            "model": r.model_id,
            "status": self.status,
            "error": self.error,
        }
        if self.status == "succeeded":
            content: dict[str, str] = {}
            if self.video_url:
                content["video_url"] = self.video_url
            if self.last_frame_url:
                content["last_frame_url"] = self.last_frame_url
            out["content"] = content
        out["usage"] = {"completion_tokens": self.tokens, "total_tokens": self.tokens}
        out["created_at"] = int(self.created_at)
        out["updated_at"] = int(self.updated_at)
        out["seed"] = self.seed
        out["resolution"] = r.resolution
        out["ratio"] = r.ratio
        if r.frames is not None:
            out["frames"] = r.frames
        else:
            out["duration"] = r.duration
        out["framespersecond"] = 24
        out["service_tier"] = r.service_tier
        out["execution_expires_after"] = r.execution_expires_after
        if r.generate_audio is not None:
            out["generate_audio"] = r.generate_audio
        out["draft"] = r.draft
        if r.draft_task_id is not None:
            out["draft_task_id"] = r.draft_task_id
        out["priority"] = r.priority
        out["output_format"] = "mp4"
        if r.safety_identifier is not None:
            out["safety_identifier"] = r.safety_identifier
        return out

    def to_admin(self) -> dict[str, Any]:
        """The admin view: status plus the raw request and billing facts."""
        return {
            "id": self.id,
            "model": self.req.model_id,
            "status": self.status,
            "callback_url": self.req.callback_url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "billed_tokens": self.tokens,
            "usage": {"completion_tokens": self.tokens, "total_tokens": self.tokens},
            "deleted": self.deleted,
            "deleted_at": self.deleted_at,
            "error": self.error,
            "faults": list(self.faults),
            "api_key": self.api_key,
            "user_agent": self.user_agent,
            "client_request_id": self.client_request_id,
            "width": self.req.width,
            "height": self.req.height,
            "output_frames": self.req.output_frames,
            "request": self.request_body,
            "requests": dict(self.requests),
        }


Listener = Callable[[TaskRecord], None]
Concurrency = Callable[[str], int | None]
"""Bucket -> how many of its tasks may run at once (None: no limit)."""


class TaskStore:
    """All tasks, plus the transitions that move them along the emulator clock."""

    def __init__(
        self,
        signer: UrlSigner,
        *,
        plus_one_frame: bool = True,
        concurrency: Concurrency | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.signer = signer
        self.plus_one_frame = plus_one_frame
        self.concurrency: Concurrency = concurrency or (lambda _bucket: None)
        self.rng = rng or random.Random()
        self.tasks: dict[str, TaskRecord] = {}
        self._active: dict[str, TaskRecord] = {}
        self.listeners: list[Listener] = []
        """Called on every change the provider would announce (callbacks)."""
        self.observers: list[Listener] = []
        """Called on every status change, cancellations included (capacity counters)."""
        # Earliest time anything can change; advance() is a no-op before it, so
        # frequent GETs with thousands of live tasks stay cheap.
        self._next_due: float | None = None

    # -- creation and lookup -------------------------------------------------

    def add(self, task: TaskRecord) -> None:
        """Register a new queued task (its plan is already filled in)."""
        task.updated_at = task.created_at
        if task.seed == -1:
            task.seed = self.rng.randint(0, SEED_MAX)
        self.tasks[task.id] = task
        self._active[task.id] = task
        if self._next_due is not None:
            self._next_due = min(self._next_due, task.ready_at, task.deadline)
        self._emit(task)

    def clear(self) -> None:
        """Forget every task (``POST /_emulator/reset``)."""
        self.signer.clear()
        self.tasks.clear()
        self._active.clear()
        self._next_due = None

    def status_counts(self) -> Counter[str]:
        """Live (not deleted) tasks by status."""
        return Counter(t.status for t in self.tasks.values() if not t.deleted)

    def draft_source(self, task_id: str) -> DraftSource | None:
        """Facts about a possible draft task, for ``draft_task`` content items."""
        t = self.tasks.get(task_id)
        if t is None or t.deleted:
            return None
        return DraftSource(
            task_id=t.id,
            family=t.req.spec.family,
            is_draft=t.req.draft,
            succeeded=t.status == "succeeded",
            mode=t.req.mode,
            ratio=t.req.ratio,
            duration=t.req.duration,
            frames=t.req.frames,
            seed=t.seed,
        )

    # -- transitions ---------------------------------------------------------

    def _emit(self, task: TaskRecord) -> None:
        for observer in self.observers:
            observer(task)
        for listener in self.listeners:
            listener(task)

    def _set(self, task: TaskRecord, status: Status, at: float) -> None:
        task.status = status
        task.updated_at = max(at, task.updated_at)
        if status in TERMINAL:
            task.finished_at = task.updated_at
            self._active.pop(task.id, None)
        self._emit(task)

    def _finish(self, task: TaskRecord, at: float) -> None:
        outcome = task.outcome
        if outcome.kind == "fail":
            task.error = {
                "code": outcome.code or "InternalServiceError",
                "message": outcome.message or "",
            }
            self._set(task, "failed", at)
        elif outcome.kind == "expire":
            self._expire(task, at)
        else:
            task.tokens = task.req.tokens(self.plus_one_frame)
            task.url_expires_at = int(at) + task.url_ttl
            task.video_url = self._file_url(task, "video.mp4", at)
            if task.req.return_last_frame:
                task.last_frame_url = self._file_url(task, "last_frame.png", at)
            self._set(task, "succeeded", at)

    def _file_url(self, task: TaskRecord, name: str, at: float) -> str:
        path = self.signer.object_path(task.id, name, task.req.model_id, task.created_at)
        return self.signer.url(path, at, task.url_ttl, region=task.region, base_url=task.files_base)

    def _expire(self, task: TaskRecord, at: float) -> None:
        task.error = {
            "code": "TaskExpired",
            "message": (
                "The task was not finished within execution_expires_after "
                f"({task.req.execution_expires_after} s) and has expired."
            ),
        }
        self._set(task, "expired", at)

    def _advance_running(self, task: TaskRecord, now: float) -> None:
        if task.outcome.kind == "stuck":
            return
        assert task.started_at is not None
        end = task.started_at + task.run_seconds
        if task.deadline < end and task.deadline <= now:
            self._expire(task, task.deadline)
        elif end <= now:
            self._finish(task, end)

    def _advance_queued(
        self, task: TaskRecord, now: float, running: Counter[str], freed: dict[str, list[float]]
    ) -> None:
        """Move a queued task on: expire it, or start it when it is ready and its model has a
        free slot (a slot freed at time t starts the oldest waiting task at t)."""
        if task.outcome.kind == "stuck" and task.outcome.stuck_phase == "queued":
            if task.deadline <= now:
                self._expire(task, task.deadline)
            return
        if task.outcome.kind == "expire" and task.outcome.expire_phase == "queued":
            if task.ready_at <= now:
                self._expire(task, task.ready_at)
            return
        if task.deadline <= now and task.deadline <= task.ready_at:
            self._expire(task, task.deadline)
            return
        if task.ready_at > now:
            return
        limit = self.concurrency(task.bucket)
        slots = freed[task.bucket]
        if limit is None or running[task.bucket] + len(slots) < limit:
            # A slot was free before this pass: start when ready (or now, if it had waited
            # for a slot that was freed some other way, e.g. by a clock reset).
            start = now if task.waited_for_slot else task.ready_at
        elif slots:
            start = max(task.ready_at, heapq.heappop(slots))
        else:
            task.waited_for_slot = True
            if task.deadline <= now:
                self._expire(task, task.deadline)
            return
        if task.deadline <= start:
            self._expire(task, task.deadline)
            return
        task.started_at = start
        self._set(task, "running", start)
        self._advance_running(task, now)
        if task.status == "running":
            running[task.bucket] += 1
        elif task.finished_at is not None:
            heapq.heappush(slots, task.finished_at)

    def advance(self, now: float) -> None:
        """Apply every transition due at or before ``now``, in time order per task."""
        if self._next_due is not None and now < self._next_due:
            return
        self._advance(now)
        self._next_due = self.next_event_at()
        if self._next_due is None:
            self._next_due = float("inf")

    def _advance(self, now: float) -> None:
        active = list(self._active.values())
        freed: dict[str, list[float]] = defaultdict(list)
        for task in active:
            if task.status == "running":
                self._advance_running(task, now)
                if task.status != "running" and task.finished_at is not None:
                    heapq.heappush(freed[task.bucket], task.finished_at)
        running = Counter(t.bucket for t in self._active.values() if t.status == "running")
        for task in active:
            if task.status == "queued":
                self._advance_queued(task, now, running, freed)

    @property
    def next_due(self) -> float | None:
        """Cached earliest change time as of the last ``advance`` (None if nothing is due)."""
        if self._next_due is None or self._next_due == float("inf"):
            return None
        return self._next_due

    def next_event_at(self) -> float | None:
        """Earliest future time at which some active task could change."""
        times: list[float] = []
        for t in self._active.values():
            if t.outcome.kind == "stuck" and t.status == "running":
                continue
            if t.outcome.kind == "stuck" and t.outcome.stuck_phase == "queued":
                times.append(t.deadline)
                continue
            times.append(t.deadline)
            if t.status == "queued" and not t.waited_for_slot:
                # Tasks waiting for a slot are woken by a running task finishing.
                times.append(t.ready_at)
            elif t.started_at is not None:
                times.append(t.started_at + t.run_seconds)
        return min(times) if times else None

    # -- client operations ---------------------------------------------------

    def visible(
        self, task_id: str, now: float, retention: float, cancelled_retention: float
    ) -> TaskRecord | None:
        """The task if the API may show it: not deleted, inside the query windows."""
        t = self.tasks.get(task_id)
        if t is None or not self._is_visible(t, now, retention, cancelled_retention):
            return None
        return t

    @staticmethod
    def _is_visible(
        t: TaskRecord, now: float, retention: float, cancelled_retention: float
    ) -> bool:
        if t.deleted or t.created_at < now - retention:
            return False
        return not (
            t.status == "cancelled"
            and t.cancelled_at is not None
            and t.cancelled_at < now - cancelled_retention
        )

    def listing(
        self, now: float, retention: float, cancelled_retention: float
    ) -> Iterable[TaskRecord]:
        """Visible tasks, newest first."""
        live = [
            t
            for t in self.tasks.values()
            if self._is_visible(t, now, retention, cancelled_retention)
        ]
        live.sort(key=lambda t: (t.created_at, t.id), reverse=True)
        return live

    def cancel(self, task: TaskRecord, now: float) -> None:
        """DELETE on a queued task: it becomes ``cancelled`` (no callback; assumption)."""
        task.status = "cancelled"
        task.cancelled_at = now
        task.updated_at = max(now, task.updated_at)
        task.finished_at = task.updated_at
        self._active.pop(task.id, None)
        for observer in self.observers:
            observer(task)

    def delete(self, task: TaskRecord, now: float) -> None:
        """DELETE on a finished task: the record disappears from the API."""
        task.deleted_at = now
