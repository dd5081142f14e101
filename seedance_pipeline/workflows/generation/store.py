"""Store: copy the video (and the last frame) to our storage before the provider's URL expires.

The copy streams, hashes and sizes the file in one activity; bytes never enter history. Each
URL is copied for as long as it lives (retries with no attempt limit, bounded by the URL's own
expiry: a file host that cuts every download for minutes is waited out); when the host says the
URL expired, the task is read again for a fresh one (`workflows.output_copy`). A copy that can
no longer succeed ends the job `failed_infra`; its billed task then goes to a follower, which
keeps trying while the task lives (`handover`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core.models import (
        CopyOutputInput,
        JobState,
        Outcome,
        ProviderTask,
        ResolvedModel,
        StoredObject,
    )
    from seedance_pipeline.workflows.generation import wait
    from seedance_pipeline.workflows.generation.ending import JobEnded, ended
    from seedance_pipeline.workflows.generation.job import Job
    from seedance_pipeline.workflows.output_copy import CopyGaveUp, Source, copy_while_url_lives

Kind = Literal["video", "last_frame"]


async def outputs(job: Job, model: ResolvedModel, task: ProviderTask) -> None:
    book = job.book
    book.move_to(JobState.STORING)
    video = await copy(job, model, task, "video")
    rec = book.record
    rec.video_uri, rec.video_sha256, rec.video_bytes = video.uri, video.sha256, video.size
    if job.inp.request.return_last_frame:
        rec.last_frame_uri = (await copy(job, model, task, "last_frame")).uri
    rec.stored_at = book.now()


async def copy(job: Job, model: ResolvedModel, task: ProviderTask, kind: Kind) -> StoredObject:
    """One output copied while its URL (or a fresh one) lives."""
    base = CopyOutputInput(
        job_id=job.job_id,
        run=job.book.record.run,
        route=model.route,
        url="",  # each attempt takes the task's current URL
        kind=kind,
        requested_at=job.book.record.requested_at or job.book.now(),
        provider_succeeded_at=task.updated_at,
    )

    async def fresh() -> ProviderTask | None:
        try:
            newer = await wait.read_task(job, model)
        except JobEnded:
            return None
        job.book.note(f"asked the provider for a fresh {kind} URL")
        if newer is not None:
            job.book.apply(newer)
        return newer

    source = Source(
        task=task,
        refresh=fresh,
        url_lifetime_seconds=model.output_url_seconds,
        retention_until=_retention_until(job, model, task),
    )
    try:
        return (await copy_while_url_lives(base, source)).stored
    except CopyGaveUp as gave_up:
        raise ended(
            Outcome.FAILED_INFRA, gave_up.code, f"the {kind} could not be copied: {gave_up}"
        ) from None


def _retention_until(job: Job, model: ResolvedModel, task: ProviderTask) -> datetime:
    """When the provider forgets the task: no fresh URL can be had after that."""
    created = datetime.fromtimestamp(task.created_at, UTC) if task.created_at else None
    start = created or job.book.record.submitted_at or job.book.now()
    return start + timedelta(seconds=model.task_retention_seconds)
