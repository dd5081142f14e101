"""What the emulator's limits did: live counts per model, peaks, 429s per code, and a
bounded time series, for `GET /_emulator/stats` (`capacity`) and `GET /_emulator/capacity`.

The capacity benchmark reads these to show how a pipeline used the provider's published
limits (reference section 0, C3/C4): how close it ran to the concurrency limit per model, how
long tasks waited queued, and which 429s it drew.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from seedance_pipeline.emulator.limits import Limits
from seedance_pipeline.emulator.tasks import TaskRecord

SAMPLES_KEPT = 50_000
_COUNTED = ("queued", "running")


@dataclass
class CapacityTracker:
    """Counts kept up to date from every status change (`TaskStore.observers`)."""

    samples: deque[tuple[float, str, int, int]] = field(
        default_factory=lambda: deque(maxlen=SAMPLES_KEPT)
    )
    """(emulator time, bucket, running, queued) after each change of a bucket's counts."""
    _status: dict[str, str] = field(default_factory=dict)
    _counts: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _peaks: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _created: Counter[str] = field(default_factory=Counter)
    _waited: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    """429 answers to creates, by error code (limits and faults alike)."""
    _rate_limited_by_bucket: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )

    def observe(self, task: TaskRecord) -> None:
        """A task changed status (or was created): move it between the bucket's counts."""
        before = self._status.get(task.id)
        now = task.status
        if before == now:
            return
        counts = self._counts[task.bucket]
        if before is None:
            self._created[task.bucket] += 1
        if before in _COUNTED:
            counts[before] -= 1
        if now in _COUNTED:
            counts[now] += 1
            peaks = self._peaks[task.bucket]
            peaks[now] = max(peaks[now], counts[now])
            self._status[task.id] = now
        else:
            self._status.pop(task.id, None)
        if before == "queued" and now == "running" and task.waited_for_slot:
            self._waited[task.bucket] += 1
        if (before in _COUNTED) or (now in _COUNTED):
            self.samples.append((task.updated_at, task.bucket, counts["running"], counts["queued"]))

    def refused(self, code: str, bucket: str) -> None:
        self.rate_limited[code] += 1
        self._rate_limited_by_bucket[bucket][code] += 1

    def queued_total(self) -> int:
        return sum(c["queued"] for c in self._counts.values())

    def snapshot(self, limits: Limits, *, account: str, retry_after: bool) -> dict[str, Any]:
        buckets = sorted(set(self._created) | set(self._rate_limited_by_bucket))
        return {
            "limits": {
                "account": account,
                "concurrency_per_model": limits.concurrency_per_model,
                "rpm_per_model": limits.rpm_per_model,
                "queued_per_account": limits.queued_per_account,
                "concurrency_4k": limits.concurrency_4k,
                "rpm_4k": limits.rpm_4k,
                "retry_after": retry_after,
            },
            "queued_total": self.queued_total(),
            "rate_limited": dict(self.rate_limited),
            "models": {
                b: {
                    "running": self._counts[b]["running"],
                    "queued": self._counts[b]["queued"],
                    "peak_running": self._peaks[b]["running"],
                    "peak_queued": self._peaks[b]["queued"],
                    "created": self._created[b],
                    "waited_for_slot": self._waited[b],
                    "rate_limited": dict(self._rate_limited_by_bucket[b]),
                }
                for b in buckets
            },
        }

    def series(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Samples at or after `since`, in time order."""
        rows = sorted(s for s in self.samples if s[0] >= since)
        return [{"t": t, "model": b, "running": r, "queued": q} for t, b, r, q in rows]

    def clear(self) -> None:
        self.samples.clear()
        self._status.clear()
        self._counts.clear()
        self._peaks.clear()
        self._created.clear()
        self._waited.clear()
        self.rate_limited.clear()
        self._rate_limited_by_bucket.clear()
