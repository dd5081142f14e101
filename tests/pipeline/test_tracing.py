"""With an OTLP endpoint configured, the SDK's tracing interceptor exports the job's spans
(workflow and activities) to it: a real OTLP/HTTP receiver on loopback records them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seedance_pipeline.clients.temporal_client import connect
from seedance_pipeline.core.models import GenerationRequest, Outcome
from seedance_pipeline.worker import running_workers
from tests.pipeline.conftest import PipelineFactory
from tests.webhook.support import serve

RECEIVED: list[bytes] = []


async def _traces(request: Request) -> Response:
    RECEIVED.append(await request.body())
    return Response(b"", media_type="application/x-protobuf")


@pytest.fixture
def otlp_endpoint() -> Iterator[str]:
    with serve(Starlette(routes=[Route("/v1/traces", _traces, methods=["POST"])])) as url:
        yield url


async def test_job_spans_reach_the_otlp_endpoint(
    pipeline_factory: PipelineFactory, otlp_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint)
    async with pipeline_factory(workers=False) as pipeline:
        monkeypatch.setenv("TEMPORAL_ADDRESS", pipeline.client.service_client.config.target_host)
        traced = await connect()
        async with running_workers(traced, pipeline.settings):
            pipeline.client = traced
            record = await pipeline.run(GenerationRequest(prompt="traced job", duration=4))
    assert record.outcome == Outcome.SUCCEEDED
    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    exported = b"".join(RECEIVED)
    assert b"RunWorkflow:GenerationWorkflow" in exported
    assert b"RunActivity:create_task" in exported
