"""Whatever way a job is started, it runs the same code with the same history.

A job started with the official Temporal CLI (`temporal workflow start`, as an operator or a
schedule would, with a plain JSON input and no search attributes) and one started with
`starter.py generate` must produce histories of the same event types in the same order. Both
run against scripted activities, so the provider's answers (and so the histories) are the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.clients.jobs import job_result
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.stack.binaries import temporal_cli
from tests.workflows.support import Script, scripted_worker

ROOT = Path(__file__).resolve().parents[2]


async def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


async def _event_types(client: Client, job_id: str) -> list[str]:
    handle = client.get_workflow_handle(job_id)
    record = await job_result(handle)
    assert record.outcome == Outcome.SUCCEEDED, record.error
    history = await handle.fetch_history()
    return [_described(e) for e in history.events]


def _described(event: HistoryEvent) -> str:
    """The event's type, and a marker's name (the routing lookups' local activities)."""
    name = EventType.Name(event.event_type)
    if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
        name += ":" + event.marker_recorded_event_attributes.marker_name
    return name


async def test_cli_and_starter_starts_have_the_same_history(
    dev_env: WorkflowEnvironment, client: Client
) -> None:
    address = client.service_client.config.target_host
    prompt = f"same history {uuid.uuid4().hex[:8]}"
    by_cli, by_starter = f"cli-{uuid.uuid4().hex[:10]}", f"starter-{uuid.uuid4().hex[:10]}"
    async with scripted_worker(client, Script()) as queue:
        job = {"job_id": by_cli, "request": {"prompt": prompt, "duration": 4}}
        await _run(
            temporal_cli(),
            *("workflow", "start", "--address", address, "--task-queue", queue),
            *("--type", "GenerationWorkflow", "--workflow-id", by_cli, "--input", json.dumps(job)),
        )
        env = {**os.environ, "TEMPORAL_ADDRESS": address, "SEEDANCE_TEMPORAL__TASK_QUEUE": queue}
        await _run(
            sys.executable,
            *("starter.py", "generate", prompt, "--duration", "4", "--job-id", by_starter),
            env=env,
        )
        cli_events = await _event_types(client, by_cli)
        starter_events = await _event_types(client, by_starter)
    assert cli_events == starter_events
    markers = [e for e in cli_events if e.startswith("EVENT_TYPE_MARKER_RECORDED")]
    # no patch markers: the only ones are the routing lookups' local activities
    assert markers and set(markers) == {"EVENT_TYPE_MARKER_RECORDED:core_local_activity"}
