"""One way to connect to Temporal, for the worker, the starter and the webhook receiver.

Connection settings come from the SDK's environment config (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles); without an address there, from
TEMPORAL_PORT or the address `make up` recorded (`clients.target`), else localhost:7233. The
pydantic data converter is always set: every model crossing a Temporal boundary is pydantic.
"""

from __future__ import annotations

import os
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from seedance_pipeline.clients.target import resolve_target


class TemporalUnavailable(RuntimeError):
    """No Temporal server answered; the message says where we looked and how to start one."""


def connect_config() -> dict[str, Any]:
    _, config = resolve_target()
    return dict(config)


_TRACING: list[Any] = []


def tracing_interceptors() -> list[Any]:
    """The SDK's OpenTelemetry interceptor when an OTLP endpoint is configured (standard
    OTEL_EXPORTER_OTLP_ENDPOINT); on the client only, since workers inherit client
    interceptors and registering it twice duplicates spans."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return []
    if not _TRACING:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor

        name = os.environ.get("OTEL_SERVICE_NAME", "seedance-pipeline")
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _TRACING.append(TracingInterceptor())
    return list(_TRACING)


async def connect(
    runtime: Runtime | None = None, *, config: dict[str, Any] | None = None, **extra: Any
) -> Client:
    config = dict(config) if config is not None else connect_config()
    config.setdefault("interceptors", tracing_interceptors())
    config.update(extra)
    try:
        return await Client.connect(
            data_converter=pydantic_data_converter, runtime=runtime, **config
        )
    except RuntimeError as exc:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {config['target_host']} ({exc}). Start the embedded "
            "stack with `make up`, or set TEMPORAL_ADDRESS to your cluster."
        ) from exc


def with_pydantic(client: Client) -> Client:
    """The same connection with the pydantic converter (test environments' clients lack it)."""
    config = client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)
