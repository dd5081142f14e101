"""The create's fingerprint reaches the provider and comes back: a request that leaves the
seed to the provider is sent with the seed derived from (job, run, submit), the emulator's task
object echoes it, and the echo proves which create made the task."""

from __future__ import annotations

import httpx

from seedance_pipeline.activities.provider import ProviderActivities
from seedance_pipeline.adapters.provider_client import ProviderClient
from seedance_pipeline.core.fingerprint import Fingerprint, expected_seed, verdict
from seedance_pipeline.core.models import (
    CreateTaskInput,
    GenerationRequest,
    ProviderTask,
    ResolveInput,
    TaskRef,
)
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle


async def test_the_provider_echoes_each_creates_own_seed(
    emulator: EmulatorHandle, settings: Settings
) -> None:
    request = GenerationRequest(prompt="a fox, fingerprinted", duration=4, resolution="480p")
    pinned = request.model_copy(update={"seed": 42})
    async with httpx.AsyncClient() as http:
        provider = ProviderActivities(ProviderClient(http), settings)
        model = await provider.resolve_model(ResolveInput(job_id="job-fp", request=request))

        async def seed_of(req: GenerationRequest, run: str, submit_no: int) -> int | None:
            made = await provider.create_task(
                CreateTaskInput(
                    job_id="job-fp", run=run, submit_no=submit_no, request=req, model=model
                )
            )
            ref = TaskRef(job_id="job-fp", route=model.route, task_id=made.task_id)
            return (await provider.get_task(ref)).seed

        seeds = {
            (run, n): await seed_of(request, run, n) for run in ("run-a", "run-b") for n in (1, 2)
        }
        assert await seed_of(pinned, "run-a", 3) == 42
    assert seeds == {(run, n): Fingerprint("job-fp", run, n).seed for run, n in seeds}
    assert len(set(seeds.values())) == 4
    mine = expected_seed(request, Fingerprint("job-fp", "run-a", 1))
    other = Fingerprint("job-fp", "run-b", 1)
    listed = ProviderTask(id="t", status="succeeded", seed=seeds[("run-b", 1)])
    assert verdict(listed, mine) == "mismatch"
    assert verdict(listed, expected_seed(request, other)) == "match"
