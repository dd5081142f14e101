"""The output layout with runs, on a directory and on S3 (moto): a rerun's video and manifest
land in their own run folder beside the previous run's, and a followed task's outputs in the
run's `followed-<n>/` folder; nothing overwrites another run's objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from seedance_pipeline.activities.storage import StorageActivities
from seedance_pipeline.adapters.object_store import FileStore, ObjectStore, S3Store
from seedance_pipeline.core.models import CopyOutputInput, ManifestInput
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.emulator.testing import EmulatorHandle
from tests.activities.conftest import succeeded_task

REQUESTED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
RUNS = ("3f1b0c9e-run-one", "a87d5e21-run-two")


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "file":
        return FileStore(tmp_path / "outputs")
    s3: Any = request.getfixturevalue("s3")
    return S3Store(s3, request.getfixturevalue("bucket"), "videos")


async def _copy_and_manifest(
    storage: StorageActivities, url: str, run: str, followed: int | None = None
) -> tuple[str, str]:
    env = ActivityEnvironment()
    copy = CopyOutputInput(
        job_id="job-rerun",
        route="byteplus",
        url=url,
        kind="video",
        requested_at=REQUESTED,
        run=run,
        followed_submit_no=followed,
    )
    video = await env.run(storage.copy_output, copy)
    manifest = ManifestInput(
        job_id="job-rerun",
        requested_at=REQUESTED,
        manifest={"run": run, "followed": followed},
        run=run,
        followed_submit_no=followed,
    )
    written = await env.run(storage.write_manifest, manifest)
    return video.uri, written.uri


async def test_each_run_and_each_followed_task_has_its_own_objects(
    emulator: EmulatorHandle, settings: Settings, store: ObjectStore
) -> None:
    task = await succeeded_task(emulator, "a fox, twice")
    url = task["content"]["video_url"]
    async with httpx.AsyncClient() as http:
        storage = StorageActivities(http, store, settings)
        first = await _copy_and_manifest(storage, url, RUNS[0])
        second = await _copy_and_manifest(storage, url, RUNS[1])
        followed = await _copy_and_manifest(storage, url, RUNS[0], followed=2)
    assert len({*first, *second, *followed}) == 6
    assert first[0].endswith(f"2026/11/24/job-rerun/{RUNS[0]}/video.mp4")
    assert second[1].endswith(f"2026/11/24/job-rerun/{RUNS[1]}/manifest.json")
    assert followed[0].endswith(f"/job-rerun/{RUNS[0]}/followed-2/video.mp4")
    # The first run's manifest is still the first run's after the rerun wrote its own.
    key = first[1].split("/", 3)[3] if first[1].startswith("s3://") else None
    body = (
        await store.get_bytes(key.removeprefix("videos/"))
        if key
        else Path(first[1].removeprefix("file://")).read_bytes()
    )
    assert json.loads(body) == {"run": RUNS[0], "followed": None}
