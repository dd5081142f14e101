"""The capacity gate from the CLI: `generate --priority`, a batch's rows as one fairness key at
batch priority, and `starter.py capacity` reading the gates the jobs used."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from seedance_pipeline.clients.batch_file import batch_key
from seedance_pipeline.core.capacity import BATCH_PRIORITY
from seedance_pipeline.core.models import GenerationInput
from tests.clients.support import acli
from tests.pipeline.conftest import Pipeline


@pytest.fixture
def shell(client: Client, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The in-process CLI talks to the test's Temporal, queues and capacity gates."""
    temporal = pipeline.settings.temporal
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__TASK_QUEUE", temporal.task_queue)
    monkeypatch.setenv("SEEDANCE_TEMPORAL__SUBMIT_TASK_QUEUE", temporal.submit_task_queue)
    monkeypatch.setenv("SEEDANCE_CAPACITY__SCOPE", pipeline.settings.capacity.scope)
    monkeypatch.setenv("SEEDANCE_BREAKER__SCOPE", pipeline.settings.breaker.scope)
    yield


async def _input(client: Client, job_id: str) -> GenerationInput:
    history = await client.get_workflow_handle(job_id).fetch_history()
    started = history.events[0]
    assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    payload = started.workflow_execution_started_event_attributes.input.payloads[0]
    raw = pydantic_data_converter.payload_converter.from_payloads([payload])[0]
    return GenerationInput.model_validate(raw)


async def test_generate_takes_a_priority(shell: None, client: Client) -> None:
    job = f"prio-{uuid.uuid4().hex[:8]}"
    done = await acli(
        "generate", f"priority {job}", "--duration", "4", "--priority", "1", "--job-id", job,
        "--wait", "--json",
    )  # fmt: skip
    assert done.code == 0, done.err
    inp = await _input(client, job)
    assert inp.priority == 1 and inp.fairness_key == ""


async def test_a_batch_is_one_fairness_key_at_batch_priority(
    shell: None, client: Client, tmp_path: Path
) -> None:
    word = uuid.uuid4().hex[:6]
    path = tmp_path / "night-run.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"row {word} {i}", "duration": 4}) + "\n" for i in range(2))
    )
    ran = await acli("batch", str(path))
    assert ran.code == 0, ran.err
    key = batch_key(path)
    ids = [w.id async for w in client.list_workflows(f"Batch = '{key}'")]  # the search attribute
    assert len(ids) == 2
    inputs = [await _input(client, j) for j in ids]
    assert {i.priority for i in inputs} == {BATCH_PRIORITY}
    assert {i.fairness_key for i in inputs} == {batch_key(path)}
    assert batch_key(path).startswith("night-run-")


async def test_capacity_shows_the_gate_the_jobs_used(
    shell: None, pipeline: Pipeline, client: Client
) -> None:
    job = f"cap-{uuid.uuid4().hex[:8]}"
    made = await acli("generate", f"capacity {job}", "--duration", "4", "--job-id", job, "--wait")
    assert made.code == 0, made.err
    shown = await acli("capacity", "--json")
    assert shown.code == 0, shown.err
    listed = shown.json()
    assert isinstance(listed, list)
    views = {v["route"]: v for v in listed}
    byteplus = views["byteplus"]
    assert byteplus["started"] and byteplus["account"] == "enterprise"
    mini = pipeline.settings.models["mini"].ids["byteplus"]
    model = next(m for m in byteplus["models"] if m["model_id"] == mini)
    assert model["granted_total"] >= 1 and model["in_flight"] == 0
    assert model["ceiling"] == 10 + pipeline.settings.capacity.headroom_per_model
    assert model["rpm_ceiling"] == 600
    table = await acli("capacity")
    assert table.code == 0 and mini in table.out
