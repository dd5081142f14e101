"""Budgets end to end: a job that would pass a cap fails fast as failed_quota, before any
provider call, with a message that names the cap and the spend so far."""

from __future__ import annotations

import uuid

from seedance_pipeline.core.models import GenerationRequest, Outcome
from tests.pipeline.conftest import PipelineFactory


async def test_budget_refuses_before_any_provider_call(pipeline_factory: PipelineFactory) -> None:
    async with pipeline_factory(budgets={"byteplus": {"daily": 0.1}}) as pipeline:
        before = await pipeline.create_calls()
        record = await pipeline.run(
            GenerationRequest(
                prompt=f"over budget {uuid.uuid4().hex}", duration=5, resolution="720p"
            )
        )
        after = await pipeline.create_calls()
    assert record.outcome == Outcome.FAILED_QUOTA
    assert record.error and record.error.code == "BudgetExceeded"
    assert "daily budget for route byteplus is 0.1000 USD" in record.error.message
    assert "0.3811 USD" in record.error.message  # the estimate (24·d+1 frames) over the cap
    assert after == before


async def test_under_budget_job_runs_and_releases_its_hold(
    pipeline_factory: PipelineFactory,
) -> None:
    async with pipeline_factory(budgets={"byteplus": {"daily": 100.0}}) as pipeline:
        record = await pipeline.run(
            GenerationRequest(prompt=f"in budget {uuid.uuid4().hex}", duration=4, resolution="480p")
        )
    assert record.outcome == Outcome.SUCCEEDED, record.error
