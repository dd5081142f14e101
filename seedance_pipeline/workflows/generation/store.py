"""Store: copy the video (and the last frame) to our storage before the provider's URL expires.

The copy streams, hashes and sizes the file in one activity; bytes never enter history. A URL
the provider's storage refuses as expired is replaced by a fresh GET of the task (a new signed
URL, if the provider gives one) a few times before the job ends `OutputExpired`.
"""

from __future__ import annotations

from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.models import (
        CopyOutputInput,
        JobState,
        Outcome,
        ProviderTask,
        ResolvedModel,
        StoredObject,
    )
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs
    from seedance_pipeline.workflows.generation import wait
    from seedance_pipeline.workflows.generation.ending import JobEnded, ended, error_from
    from seedance_pipeline.workflows.generation.job import Job

Kind = Literal["video", "last_frame"]
URL_REFRESHES = 2
"""Fresh URLs asked for after the first is refused as expired."""


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
    """One output copied, asking for a fresh URL when the provider's storage says it expired."""
    refreshes = 0
    while True:
        try:
            return await opts.call(
                stubs.copy_output, _copy_input(job, model, task, kind), opts.COPY
            )
        except ActivityError as err:
            kind_, info, _ = error_from(err)
            if kind_ != et.OUTPUT_URL_EXPIRED:
                raise JobEnded(Outcome.FAILED_INFRA, info) from None
            if refreshes == URL_REFRESHES:
                raise _expired(
                    kind, f"task {task.id} still offers only a refused URL ({info.message})"
                ) from None
            refreshes += 1
            job.book.note(f"{kind} URL refused ({info.message}); asking for a fresh one")
            task = await _fresh(job, model, task, kind)


def _copy_input(job: Job, model: ResolvedModel, task: ProviderTask, kind: Kind) -> CopyOutputInput:
    content = task.content
    url = (content.video_url if kind == "video" else content.last_frame_url) if content else None
    if not url:
        raise ended(
            Outcome.FAILED_INFRA, "OutputMissing", f"provider reported success without a {kind} URL"
        )
    return CopyOutputInput(
        job_id=job.job_id,
        route=model.route,
        url=url,
        kind=kind,
        requested_at=job.book.record.requested_at or job.book.now(),
        provider_succeeded_at=task.updated_at,
    )


async def _fresh(job: Job, model: ResolvedModel, task: ProviderTask, kind: Kind) -> ProviderTask:
    try:
        fresh = await wait.get_task(job, model)
    except JobEnded as gone:
        raise _expired(
            kind, f"the provider no longer has task {task.id} ({gone.error.code})"
        ) from None
    job.book.apply(fresh)
    return fresh


def _expired(kind: Kind, why: str) -> JobEnded:
    return ended(
        Outcome.FAILED_INFRA,
        "OutputExpired",
        f"the {kind} expired before it could be copied: {why}",
    )
