"""Counters exposed at ``GET /_emulator/stats``.

Benchmarks and tests use these to prove what the client did (how many creates,
how many retries hit a 5xx, how many callbacks were attempted) without parsing
logs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Request and callback counters; fault hits live on the FaultSet."""

    requests: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    callbacks: Counter[str] = field(default_factory=Counter)

    def record_request(self, operation: str, status: int | str) -> None:
        """Count one finished request (``status`` is ``"dropped"`` if none was sent)."""
        self.requests[operation][str(status)] += 1

    def clear(self) -> None:
        """Forget everything (``POST /_emulator/reset``)."""
        self.requests.clear()
        self.callbacks.clear()

    def snapshot(self, faults: Counter[str], tasks: Counter[str]) -> dict[str, Any]:
        """JSON view including fault hits and current task counts by status."""
        totals = {op: sum(c.values()) for op, c in self.requests.items()}
        return {
            "requests": {op: dict(c) for op, c in sorted(self.requests.items())},
            "request_totals": totals,
            "callbacks": {
                "attempted": self.callbacks["attempted"],
                "succeeded": self.callbacks["succeeded"],
                "failed": self.callbacks["failed"],
                "dropped": self.callbacks["dropped"],
                "gave_up": self.callbacks["gave_up"],
            },
            "faults": dict(faults),
            "tasks": dict(tasks),
        }
