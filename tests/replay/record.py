"""Record the workflow histories the replay tests run against: one per job path.

    .venv/bin/python -m tests.replay.record     # rewrites tests/replay/histories/*.json

Nothing is deployed yet, so there is one history shape and re-recording replaces the files.
Once something is deployed, a workflow change gets a patch (docs/architecture.md, "The patch
lifecycle") and its new histories are committed beside the old ones. It uses the same real
servers as the suite: a dev server, the emulator, the webhook receiver and in-process workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from seedance_pipeline.clients.jobs import start_job
from seedance_pipeline.core.models import GenerationRequest, JobRecord, JobState
from seedance_pipeline.core.search_attributes import ALL_KEYS
from seedance_pipeline.emulator.testing import running_emulator
from seedance_pipeline.stack.binaries import temporal_cli
from seedance_pipeline.webhook.app import create_app
from seedance_pipeline.worker import running_workers
from tests.pipeline.conftest import API_KEY, CALLBACK_SECRET, pipeline_settings
from tests.webhook.support import serve

HISTORIES = Path(__file__).parent / "histories"
PATHS = ("success", "moderation", "fallback", "ambiguous", "expiry", "cancel")
"""Every exit of the job that history must keep replaying."""


async def _record(handle: WorkflowHandle[Any, Any], name: str) -> None:
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())
    print(f"recorded {name}: {len(history.events)} events")


async def _until(client: Client, job: str, state: JobState) -> None:
    handle = client.get_workflow_handle(job)
    for _ in range(200):
        record = await handle.query("status", result_type=JobRecord)
        if record and record.state == state:
            return
        await asyncio.sleep(0.05)


async def main() -> None:
    os.environ["ARK_API_KEY"] = API_KEY
    os.environ["SEEDANCE_CALLBACK_SECRET"] = CALLBACK_SECRET
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=ALL_KEYS,
        data_converter=pydantic_data_converter,
    )
    client = env.client
    target = client.service_client.config.target_host

    async def factory() -> Client:
        return await Client.connect(target, data_converter=pydantic_data_converter)

    tmp = Path(tempfile.mkdtemp())
    with (
        running_emulator(
            data_dir=tmp / "emulator",
            api_keys=[API_KEY],
            queue_seconds=0.1,
            run_seconds=0.3,
            tos_urls=True,  # pipeline_settings maps the TOS hosts to the emulator
        ) as emulator,
        serve(create_app(client_factory=factory, secret=CALLBACK_SECRET.encode())) as hook,
    ):
        settings = pipeline_settings(emulator, hook, tmp)
        async with running_workers(client, settings):
            scenarios: dict[str, tuple[list[dict[str, Any]], str]] = {
                "success": ([], "a fox in snow"),
                "moderation": ([{"kind": "output_moderation"}], "moderated"),
                "ambiguous": ([{"kind": "create_ambiguous", "max_hits": 1}], "ambiguous create"),
                "expiry": ([{"kind": "expire", "max_hits": 1}], "expires once"),
            }
            # Last: its failures open mini's breaker, which would reroute later scenarios.
            fallback_faults = [
                {
                    "kind": "internal_failure",
                    "match": {"model": settings.model("mini").ids["byteplus"]},
                }
            ]
            for name, (faults, prompt) in scenarios.items():
                await emulator.aset_faults(faults)
                started = await start_job(
                    client,
                    settings,
                    GenerationRequest(prompt=prompt, duration=4, resolution="480p"),
                    job_id=f"replay-{name}",
                )
                assert started.handle is not None
                with contextlib.suppress(WorkflowFailureError):
                    await started.handle.result()
                await _record(started.handle, name)
            await emulator.aset_faults([{"kind": "stuck", "phase": "queued"}])
            started = await start_job(
                client,
                settings,
                GenerationRequest(prompt="cancel me", duration=4),
                job_id="replay-cancel",
            )
            assert started.handle is not None
            await _until(client, "replay-cancel", JobState.QUEUED)
            await started.handle.cancel()
            with contextlib.suppress(WorkflowFailureError):
                await started.handle.result()
            await _record(started.handle, "cancel")
            await emulator.aset_faults(fallback_faults)
            started = await start_job(
                client,
                settings,
                GenerationRequest(prompt="falls back", duration=4, resolution="480p"),
                job_id="replay-fallback",
            )
            assert started.handle is not None
            await started.handle.result()
            await _record(started.handle, "fallback")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)  # skip the SDK runtime's teardown abort (PyGILState_Release) at exit
