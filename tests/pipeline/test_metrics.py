"""The worker's Prometheus endpoint exposes the project's metrics beside the SDK's."""

from __future__ import annotations

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.core import metric_names as names
from seedance_pipeline.core.models import GenerationRequest, Outcome
from seedance_pipeline.stack.ports import free_port
from seedance_pipeline.worker import running_workers
from tests.pipeline.conftest import PipelineFactory


async def test_metrics_after_a_job(
    dev_env: WorkflowEnvironment, pipeline_factory: PipelineFactory
) -> None:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    async with (
        pipeline_factory(workers=False) as pipeline,
        running_workers(client, pipeline.settings),
    ):
        pipeline.client = client
        record = await pipeline.run(
            GenerationRequest(prompt="metrics job", duration=4, resolution="480p")
        )
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert record.outcome == Outcome.SUCCEEDED
    exported = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for name in (
        names.JOBS,
        names.PROVIDER_CALLS,
        names.PROVIDER_CALL_SECONDS,
        names.COMPLETION_TO_STORAGE_SECONDS,
        names.JOB_SECONDS,
        names.COST,
        names.VIDEO_SECONDS,
    ):
        assert any(e == name or e.startswith(name + "_") for e in exported), (name, exported)
    assert 'op="create"' in text and 'status="200"' in text
    assert "temporal_workflow_completed" in text  # the SDK's own metrics share the endpoint
