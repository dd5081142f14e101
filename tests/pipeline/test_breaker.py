"""The per-model breaker on the dev server: Mini fails, the breaker opens, jobs go to Fast,
a probe after the cool-down finds Mini recovered, the breaker closes, Mini is used again.
Moderation never opens it; two workers route by the same state; a burst asking an open
breaker shares a few updates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from seedance_pipeline.activities.health import HealthActivities
from seedance_pipeline.clients.health import breaker_states, force_breaker
from seedance_pipeline.core.breaker import BreakerState
from seedance_pipeline.core.models import ChooseModelInput, GenerationRequest, JobRecord, Outcome
from seedance_pipeline.worker import running_workers
from seedance_pipeline.workflows.model_health import workflow_id
from tests.pipeline.conftest import Pipeline, PipelineFactory

BREAKER = {
    "breaker": {
        "consecutive_failures": 3,
        "min_samples": 3,
        "cooldown_seconds": 4.0,  # the open-breaker job must start within it on a loaded box
        "probe_successes": 1,
    },
    "retries": {"task_attempts": 1},
}


async def _job(pipeline: Pipeline, text: str) -> JobRecord:
    return await pipeline.run(
        GenerationRequest(prompt=f"{text} {uuid.uuid4().hex[:6]}", duration=4, resolution="480p")
    )


async def _state(pipeline: Pipeline, alias: str) -> BreakerState | None:
    b = (await breaker_states(pipeline.client, pipeline.settings))[alias]
    return b.state if b else None


async def test_breaker_opens_falls_back_probes_and_closes(
    pipeline_factory: PipelineFactory,
) -> None:
    async with pipeline_factory(**BREAKER) as pipeline:
        mini_id = pipeline.settings.model("mini").ids["byteplus"]
        await pipeline.emulator.aset_faults(
            [{"kind": "internal_failure", "match": {"model": mini_id}}]
        )
        failing = [await _job(pipeline, "mini failing") for _ in range(3)]
        assert await _state(pipeline, "mini") == BreakerState.OPEN

        routed = await _job(pipeline, "breaker open")
        await pipeline.emulator.aset_faults([])  # Mini recovers
        await asyncio.sleep(4.5)  # cool-down: the next job probes Mini
        probe = await _job(pipeline, "probe")
        assert await _state(pipeline, "mini") == BreakerState.CLOSED
        later = await _job(pipeline, "closed again")

    for record in failing:  # each fell back by itself, with every attempt recorded
        assert record.outcome == Outcome.SUCCEEDED, record.error
        assert [a.model_alias for a in record.attempts] == ["mini", "fast"]
        assert record.attempts[0].error and record.attempts[0].error.code == "InternalServiceError"
        assert record.attempts[0].model_id == mini_id
    assert routed.outcome == Outcome.SUCCEEDED
    assert [a.model_alias for a in routed.attempts] == ["fast"]
    assert any("mini=open" in n and "routed to fast" in n for n in routed.notes)
    assert probe.model_alias == "mini" and any("as a probe" in n for n in probe.notes)
    assert later.model_alias == "mini" and later.outcome == Outcome.SUCCEEDED


async def test_moderation_never_opens_the_breaker(pipeline_factory: PipelineFactory) -> None:
    async with pipeline_factory(**BREAKER) as pipeline:
        await pipeline.emulator.aset_faults([{"kind": "output_moderation"}])
        records = [await _job(pipeline, "moderated") for _ in range(5)]
        state = await _state(pipeline, "mini")
    assert all(r.outcome == Outcome.REJECTED_MODERATION for r in records)
    assert all([a.model_alias for a in r.attempts] == ["mini"] for r in records)
    assert state in (None, BreakerState.CLOSED)


async def test_two_workers_route_by_the_same_breaker(pipeline_factory: PipelineFactory) -> None:
    async with pipeline_factory(workers=False, **BREAKER) as pipeline:
        settings, client = pipeline.settings, pipeline.client
        # A second connection, as a second worker process has (the SDK allows one worker per
        # task queue per client).
        other = await Client.connect(
            client.service_client.config.target_host, data_converter=pydantic_data_converter
        )
        async with (
            running_workers(client, settings, identity="worker-a"),
            running_workers(other, settings, identity="worker-b"),
        ):
            await force_breaker(client, settings, "mini", "open")
            records = await asyncio.gather(*(_job(pipeline, f"two workers {i}") for i in range(8)))
            await force_breaker(client, settings, "mini", "closed")
    deciders = {
        n.split(" routed to")[0].split("; ")[-1]
        for r in records
        for n in r.notes
        if "routed to" in n
    }
    assert all(r.model_alias == "fast" and r.outcome == Outcome.SUCCEEDED for r in records)
    assert deciders == {"worker-a", "worker-b"}, deciders


async def test_a_burst_behind_an_open_breaker_shares_a_few_updates(
    pipeline_factory: PipelineFactory,
) -> None:
    """An open breaker's answer is not remembered, so every job asks the entity; Temporal
    allows 10 updates in flight per workflow, so 60 jobs asking at once from one worker go out
    as a few updates (group commit), and every one of them is routed to the fallback."""
    async with pipeline_factory(workers=False, **BREAKER) as pipeline:
        settings, client = pipeline.settings, pipeline.client
        async with running_workers(client, settings, identity="worker-a"):
            await force_breaker(client, settings, "mini", "open")
            health = HealthActivities(client, settings)
            choices = await asyncio.gather(
                *(
                    health.choose_model(ChooseModelInput(job_id=f"burst-{i}", alias="mini"))
                    for i in range(60)
                )
            )
            admissions = [
                name async for name in _updates(client, workflow_id("mini", settings.breaker.scope))
            ]
    assert [c.alias for c in choices] == ["fast"] * 60
    assert 1 <= admissions.count("admit_many") <= 6, admissions


async def _updates(client: Client, workflow_id: str) -> AsyncIterator[str]:
    """The names of the updates a workflow accepted, in order."""
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes
            yield accepted.accepted_request.input.name
