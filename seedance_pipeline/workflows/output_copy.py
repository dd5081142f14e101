"""Copy one provider output for as long as its URL lives, with fresh URLs when one dies.

Each URL gets one copy activity whose retries have no attempt limit and end at the URL's own
expiry (`core.copy_deadline`): a host that cuts every download for minutes or hours is waited
out, without history (retries are not events) and without a slot between attempts beyond the
backoff. When the host says the URL expired, or its window closes, the task is read again for a
fresh URL; a host outside the route's allow-list, a task the provider no longer has, or a
provider that keeps offering the same dead URL ends the copy with the reason (`CopyGaveUp`).

The task follower uses it; the job's store phase can use the same call (`copy_while_url_lives`
with its own `refresh`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from seedance_pipeline.core import error_types as et
    from seedance_pipeline.core.copy_deadline import CopyDeadline, copy_deadline, copy_retry
    from seedance_pipeline.core.models import CopyOutputInput, ProviderTask, StoredObject
    from seedance_pipeline.workflows import activity_options as opts
    from seedance_pipeline.workflows import activity_stubs as stubs

Kind = Literal["video", "last_frame"]
FRESH_URLS = 3
"""Fresh URLs asked for after the first one died, per output."""
Refresh = Callable[[], Awaitable[ProviderTask | None]]
"""Read the task again: the task (with its current URLs), or None when it is gone."""


class CopyGaveUp(Exception):
    """No copy is possible any more; the message says why, `code` names it for the record."""

    def __init__(self, message: str, code: str = "OutputExpired") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Source:
    """Where an output comes from and how long its URLs can live."""

    task: ProviderTask
    refresh: Refresh
    url_lifetime_seconds: float
    retention_until: datetime
    """When the provider forgets the task: no fresh URL can be asked for after this."""


@dataclass(frozen=True)
class Copied:
    stored: StoredObject
    task: ProviderTask
    """The task as last read (a fresh URL may have replaced the first)."""


def output_url(task: ProviderTask, kind: Kind) -> str | None:
    content = task.content
    if content is None:
        return None
    return content.video_url if kind == "video" else content.last_frame_url


async def copy_while_url_lives(base: CopyOutputInput, source: Source) -> Copied:
    """Copy `base.kind` of `source.task` (its URL, not `base.url`) into `base`'s place."""
    task, fresh, why = source.task, 0, ""
    while True:
        url = output_url(task, base.kind)
        if not url:
            raise CopyGaveUp(
                f"the provider reported success without a {base.kind} URL", "OutputMissing"
            )
        stored, why = await _copy_one(base, url, task, source)
        if stored is not None:
            return Copied(stored, task)
        if fresh >= FRESH_URLS or workflow.now() >= source.retention_until:
            raise CopyGaveUp(f"{why}; no fresh URL left to try")
        fresh += 1
        newer = await source.refresh()
        if newer is None or newer.status != "succeeded":
            raise CopyGaveUp(f"{why}; the provider no longer offers the task")
        if output_url(newer, base.kind) == url:  # its window is over, or the host refused it
            raise CopyGaveUp(f"{why}; the provider still offers only that URL")
        task = newer


async def _copy_one(
    base: CopyOutputInput, url: str, task: ProviderTask, source: Source
) -> tuple[StoredObject | None, str]:
    """One URL, retried until its deadline: (stored, "") or (None, why it stopped)."""
    deadline = _deadline(url, task, source)
    now = workflow.now()
    if deadline.passed(now):
        return None, f"the {base.kind} URL expired at {deadline.describe()}"
    copy = base.model_copy(update={"url": url, "provider_succeeded_at": task.updated_at})
    try:
        stored = await opts.call(
            stubs.copy_output, copy, opts.copy_options(copy_retry(deadline, now))
        )
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == et.OUTPUT_HOST_REFUSED:
            raise CopyGaveUp(cause.message, et.OUTPUT_HOST_REFUSED) from None
        if isinstance(cause, ApplicationError) and cause.type == et.OUTPUT_URL_EXPIRED:
            return None, f"the host refused the {base.kind} URL ({cause.message})"
        return None, f"the {base.kind} copy kept failing until {deadline.describe()} ({cause})"
    return stored, ""


def _deadline(url: str, task: ProviderTask, source: Source) -> CopyDeadline:
    return copy_deadline(
        url,
        succeeded_at=_utc(task.updated_at) or workflow.now(),
        url_lifetime_seconds=source.url_lifetime_seconds,
        retention_until=source.retention_until,
    )


def _utc(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None
