"""Where a job's outputs live in our storage (the store adds its own prefix).

    {yyyy}/{mm}/{dd}/{job_id}/{run}/video.mp4, last_frame.png, manifest.json
    {yyyy}/{mm}/{dd}/{job_id}/{run}/followed-{submit_no}/video.mp4, ...

One folder per run: a rerun under the same job ID writes beside the previous run's outputs,
never over them, and its manifest names its own run. A task the job handed to a follower (the
job ended while the task could still run and bill) stores in a `followed-<submit number>/`
folder of its run, so a late success never overwrites the video the job itself stored. The date
is the job's request day (UTC), so every output of a run sits under one day. A record written
before runs were recorded (`run` empty) keeps the old `{job_id}/{name}` place.

The manifest says which layout it follows (`layout` in `core.manifest`). Keys are
deterministic, so a retried copy overwrites itself.
"""

from __future__ import annotations

from datetime import UTC, datetime

RUN_LAYOUT = "{yyyy}/{mm}/{dd}/{job_id}/{run}/{name}"
FOLLOWED_LAYOUT = "{yyyy}/{mm}/{dd}/{job_id}/{run}/followed-{submit_no}/{name}"
LEGACY_LAYOUT = "{yyyy}/{mm}/{dd}/{job_id}/{name}"
VIDEO = "video.mp4"
LAST_FRAME = "last_frame.png"
MANIFEST = "manifest.json"


def key_parts(
    job_id: str,
    requested_at: datetime,
    name: str,
    *,
    run: str = "",
    followed_submit_no: int | None = None,
) -> tuple[str, ...]:
    """The key's path segments (each checked by the store's `safe_key`)."""
    day = requested_at.astimezone(UTC) if requested_at.tzinfo else requested_at
    parts: list[str] = [f"{day:%Y}", f"{day:%m}", f"{day:%d}", job_id]
    if run:
        parts.append(run)
    if followed_submit_no is not None:
        parts.append(f"followed-{followed_submit_no}")
    parts.append(name)
    return tuple(parts)


def layout_of(run: str, followed_submit_no: int | None = None) -> str:
    """The layout a manifest documents for its outputs."""
    if followed_submit_no is not None:
        return FOLLOWED_LAYOUT
    return RUN_LAYOUT if run else LEGACY_LAYOUT
