"""Prometheus metrics of the receiver, in a registry of its own.

A registry per app (not the process-global one) so several apps can live in one process (tests)
without duplicate-registration errors.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from seedance_pipeline.webhook.outcome import Result


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.callbacks = Counter(
            "seedance_webhook_callbacks",
            "Provider callbacks received, by what the receiver did with them.",
            ["result"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "seedance_webhook_callback_seconds",
            "Time to answer a callback (the provider gives up after 5 s).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 10),
            registry=self.registry,
        )
        for result in Result:
            self.callbacks.labels(result=result.value)  # every series exists from the start

    def observe(self, result: Result, seconds: float) -> None:
        self.callbacks.labels(result=result.value).inc()
        self.seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
