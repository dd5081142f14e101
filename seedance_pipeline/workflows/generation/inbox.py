"""The inbox: what signal handlers drop off for the phases.

Handlers run between the phases' awaits. They never call activities; they leave what they
learned here (a task that announced itself for the create in flight, a reason to look at the
provider now, a later deadline) and the phase that waits picks it up. `take_callback` holds the
rules for a provider callback: an unsigned hint that arrives duplicated, late and out of order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio.workflow import unsafe

with unsafe.imports_passed_through():
    from seedance_pipeline.core.job_state import provider_moves_forward
    from seedance_pipeline.core.models import ProviderCallback, ProviderTask
    from seedance_pipeline.workflows.generation.book import JobBook


@dataclass
class Inbox:
    announced: dict[int, ProviderTask] = field(default_factory=dict)
    """Tasks that announced themselves by callback, by the create (submit number) they answer."""
    creating: int | None = None
    """The submit number of the create in flight (or being reconciled), if any."""
    terminal_hint: bool = False
    """A callback said the task ended: confirm with a GET now."""
    poked: bool = False
    """An operator asked to look at the provider now (a callback was lost)."""
    discard: bool = False
    """The operator asked not to store the outputs of a task followed after a cancel."""
    extension: timedelta = timedelta(0)
    """Operator extensions of the job's deadlines (the capacity wait's too)."""
    granted: str | None = None
    """The model ID the capacity gate last granted a slot on by its signal (to a waiter)."""
    holding: str | None = None
    """The model ID whose slot the job holds now, if any."""
    asking: str | None = None
    """The model ID the job has asked the gate for and not given back (held or waited for)."""
    capacity_since: datetime | None = None
    """When the job first asked for capacity: its wait bound counts from here."""

    @property
    def look_now(self) -> bool:
        return self.terminal_hint or self.poked

    def looked(self) -> None:
        self.terminal_hint = self.poked = False

    def take_announcement(self, submit_no: int, task_id: str) -> ProviderTask | None:
        """The callback that announced `task_id` for this create, if one came."""
        task = self.announced.pop(submit_no, None)
        return task if task is not None and task.id == task_id else None


def take_callback(
    book: JobBook, inbox: Inbox, callback: ProviderCallback | None, args: int = 1
) -> ProviderTask | None:
    """Apply a callback's news, or note why it was ignored (never fails the workflow task).

    `callback` is None when the signal was not one valid callback (it had `args` arguments).
    Returns the task when its status was applied to the book (the caller records metrics)."""
    rec = book.record
    rec.callbacks_received += 1
    if callback is None:
        book.ignore_callback(f"ignored a malformed callback signal ({args} args)")
        return None
    task = callback.task
    if book.finished:
        rec.callbacks_ignored += 1
        return None
    if callback.submit_no == inbox.creating and rec.provider_task_id is None:
        known = inbox.announced.get(callback.submit_no)
        if known is None or provider_moves_forward(known.status, task.status):
            inbox.announced[callback.submit_no] = task
        return None
    if rec.provider_task_id is None or task.id != rec.provider_task_id:
        book.ignore_callback(f"ignored callback for task {task.id} (submit {callback.submit_no})")
        return None
    if task.terminal:
        # Unsigned: anyone holding the URL can post one. A terminal status only triggers the
        # confirming GET, whose answer is the one applied.
        if provider_moves_forward(rec.provider_status, task.status):
            inbox.terminal_hint = True
        return None
    return task if book.apply(task) else None
