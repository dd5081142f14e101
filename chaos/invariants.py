"""The invariants checked after every scenario: each a pure function of the `Evidence` that
returns its violations, each violation naming the job (or ledger row) and what is wrong.

1. terminal_within_deadline: every job reached a terminal state within its own deadline.
2. one_billed_task_per_job: no job has more than one billed provider task (emulator task log).
3. succeeded_jobs_complete: every succeeded job has its video, its last frame when asked, its
   manifest and its ledger row; stored sha256 = the emulator's bytes; ledger tokens = the
   provider's usage.
4. no_orphan_ledger_rows: no ledger row without a job; its task is the provider's, made for
   that job, and its tokens are what the provider billed for it (any outcome).
5. states_only_forward: no job's state moved backwards (JobState upserts in history order,
   checked with `core.job_state`).

6. no_slot_leaked: every slot the capacity gate holds is accounted for by a live provider task
   (the emulator's task log: queued or running) or by a job still running, and no closed job
   is still queued at the gate (its `state` query after the jobs closed).

7-10, what the provider billed against what we recorded and stored: `chaos.paid_work`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from chaos import paid_work
from chaos.evidence import Evidence, JobEvidence, job_of_task, live_tasks
from chaos.violations import Violation
from seedance_pipeline.core.job_state import (
    BEFORE_THE_PROVIDER,
    TERMINAL_JOB_STATES,
    job_moves_forward,
)
from seedance_pipeline.core.models import JobState, Outcome

__all__ = ["INVARIANTS", "Violation", "check_all", "deadline_of"]


Invariant = Callable[[Evidence], list[Violation]]


def deadline_of(ev: Evidence, job: JobEvidence) -> timedelta:
    """The job's own deadline, from its start: the queue + execution deadline of every provider
    task it waited for (at least one), plus the fixed slack for everything else."""
    tasks, extension = 1, 0
    if job.record is not None:
        tasks = max(1, sum(1 for a in job.record.attempts if a.provider_task_id))
        extension = job.record.deadline_extension_minutes * 60
    return timedelta(seconds=ev.deadline_seconds * tasks + ev.slack_seconds + extension)


def terminal_within_deadline(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    for job in ev.jobs.values():
        if job.closed_at is None or job.started_at is None:
            out.append(Violation(job.job_id, f"not closed (status {job.status})"))
            continue
        rec = job.record
        if rec is None:
            why = job.result_error or "no result"
            out.append(Violation(job.job_id, f"closed {job.status} without a record: {why}"))
            continue
        if rec.state not in TERMINAL_JOB_STATES or rec.outcome is None:
            out.append(Violation(job.job_id, f"closed in state {rec.state.value}, no outcome"))
            continue
        took = job.closed_at - job.started_at
        limit = deadline_of(ev, job)
        if took > limit:
            out.append(
                Violation(
                    job.job_id,
                    f"closed after {took.total_seconds():.0f}s, past its deadline of "
                    f"{limit.total_seconds():.0f}s",
                )
            )
    return out


def one_billed_task_per_job(ev: Evidence) -> list[Violation]:
    """At most one billed task per run of a job (a rerun is another run under the same ID)."""
    out: list[Violation] = []
    for job_id, tasks in ev.tasks_by_job().items():
        if job_id is None or job_id not in ev.jobs:
            continue
        billed = [t["id"] for t in tasks if int(t.get("billed_tokens") or 0) > 0]
        runs = max(1, ev.runs.get(job_id, 1))
        if len(billed) > runs:
            out.append(
                Violation(job_id, f"{len(billed)} billed provider tasks in {runs} run(s): {billed}")
            )
    return out


def _task_checks(ev: Evidence, job: JobEvidence, task: dict[str, Any]) -> list[str]:
    rec = job.record
    assert rec is not None
    problems: list[str] = []
    usage = int((task.get("usage") or {}).get("completion_tokens") or 0)
    if task.get("status") != "succeeded":
        problems.append(f"provider task {task['id']} is {task.get('status')}, not succeeded")
    if rec.tokens != usage:
        problems.append(f"record tokens {rec.tokens} != provider usage {usage}")
    video = ev.digests.get((task["id"], "video.mp4"))
    stored = job.video
    if stored is None or not stored.exists:
        problems.append(f"video missing at {rec.video_uri}")
    elif video is None:
        problems.append(f"emulator has no video for task {task['id']}")
    else:
        if stored.sha256 != video["sha256"] or stored.size != video["size"]:
            problems.append(
                f"stored video sha256 {stored.sha256[:12]}/{stored.size} B != provider's "
                f"{video['sha256'][:12]}/{video['size']} B"
            )
        if rec.video_sha256 != stored.sha256:
            problems.append("record's video_sha256 is not the stored file's")
    if rec.request is not None and rec.request.return_last_frame:
        frame = ev.digests.get((task["id"], "last_frame.png"))
        if job.last_frame is None or not job.last_frame.exists:
            problems.append(f"last frame missing at {rec.last_frame_uri}")
        elif frame is None or job.last_frame.sha256 != frame["sha256"]:
            problems.append("stored last frame differs from the provider's")
    return problems


def _manifest_checks(job: JobEvidence) -> list[str]:
    rec = job.record
    assert rec is not None
    man = job.manifest
    if man is None:
        return [f"manifest missing at {rec.manifest_uri} ({job.manifest_error or 'no URI'})"]
    problems = []
    if man.get("provider_task_id") != rec.provider_task_id:
        problems.append("manifest names another provider task")
    if (man.get("outputs") or {}).get("video", {}).get("sha256") != rec.video_sha256:
        problems.append("manifest's video sha256 differs from the record")
    if man.get("outcome") != Outcome.SUCCEEDED.value:
        problems.append(f"manifest outcome {man.get('outcome')}")
    return problems


def succeeded_jobs_complete(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    tasks = {t["id"]: t for t in ev.tasks}
    rows = {(r.job_id, r.provider_task_id): r for r in ev.ledger}
    for job in ev.jobs.values():
        rec = job.record
        if rec is None or rec.outcome != Outcome.SUCCEEDED:
            continue
        problems: list[str] = []
        task = tasks.get(rec.provider_task_id or "")
        if task is None:
            problems.append(f"provider task {rec.provider_task_id} not in the emulator's log")
        else:
            problems += _task_checks(ev, job, task)
        problems += _manifest_checks(job)
        row = rows.get((job.job_id, rec.provider_task_id))
        if row is None:
            problems.append(f"no ledger row for task {rec.provider_task_id}")
        elif task is not None:
            usage = int((task.get("usage") or {}).get("completion_tokens") or 0)
            if row.tokens != usage or not row.billed:
                problems.append(
                    f"ledger tokens {row.tokens} (billed={row.billed}) != provider usage {usage}"
                )
        out += [Violation(job.job_id, p) for p in problems]
    return out


def no_orphan_ledger_rows(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    owner = {t["id"]: job_of_task(t) for t in ev.tasks}
    billed = {t["id"]: int(t.get("billed_tokens") or 0) for t in ev.tasks}
    for row in ev.ledger:
        subject = f"ledger:{row.job_id}/{row.submit_no}"
        if row.job_id not in ev.known_jobs:
            out.append(Violation(subject, "row for a job this run never started"))
            continue
        if row.job_id not in ev.jobs:
            continue  # an earlier scenario's row: its tasks were in that scenario's log
        if row.provider_task_id not in owner:
            out.append(Violation(subject, f"task {row.provider_task_id} unknown to the provider"))
        elif owner[row.provider_task_id] != row.job_id:
            out.append(Violation(subject, f"task {row.provider_task_id} belongs to another job"))
        elif row.tokens != billed[row.provider_task_id]:
            out.append(
                Violation(
                    subject,
                    f"tokens {row.tokens} != the provider's {billed[row.provider_task_id]} "
                    f"for task {row.provider_task_id}",
                )
            )
    return out


def _in_order_within(published: list[JobState], timeline: list[JobState]) -> bool:
    rest = iter(timeline)
    return all(state in rest for state in published)


def states_only_forward(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    for job in ev.jobs.values():
        seq = [JobState(s) for s in job.states]
        if not seq:
            out.append(Violation(job.job_id, "no JobState in its history"))
            continue
        for before, after in itertools.pairwise(seq):
            # A refused create sends a job back to wait: with `submitting` published only with
            # the next change, the upserts may show waiting_for_capacity twice in a row.
            repeat = before == after and before in BEFORE_THE_PROVIDER
            if not repeat and not job_moves_forward(before, after):
                out.append(Violation(job.job_id, f"JobState moved {before.value} -> {after.value}"))
        if job.record is not None:
            # v3 jobs publish a state with the next visible change (SUBMITTING rides along),
            # so the published states are the record's timeline with some left out, in order,
            # ending where the record ends.
            timeline = [c.state for c in job.record.timeline]
            for before, after in itertools.pairwise(timeline):
                if not job_moves_forward(before, after):
                    out.append(
                        Violation(
                            job.job_id, f"record timeline moved {before.value} -> {after.value}"
                        )
                    )
            if not _in_order_within(seq, timeline) or seq[-1] != timeline[-1]:
                out.append(
                    Violation(job.job_id, "record timeline differs from the history's upserts")
                )
    return out


def no_slot_leaked(ev: Evidence) -> list[Violation]:
    if ev.gate is None:
        return []
    live = live_tasks(ev.tasks)
    live_jobs = {job for job in live.values() if job}
    out: list[Violation] = []
    for holder in ev.gate.holders.values():
        job = ev.jobs.get(holder.job_id)
        if job is not None and job.status == "RUNNING":
            continue  # a running job gives its slot back itself
        if holder.task_id in live or holder.job_id in live_jobs:
            continue  # the slot is its task's until the task ends
        state = job.status if job else "not of this scenario"
        task = holder.task_id or "none recorded"
        kind = "orphan slot" if holder.orphan else "slot"
        out.append(
            Violation(
                holder.job_id,
                f"{kind} of {holder.model_id} still held (granted {holder.granted_at:%H:%M:%S}) "
                f"with no live provider task (job {state}, task {task})",
            )
        )
    for job_id, model_id in ev.gate.waiting_ids.items():
        job = ev.jobs.get(job_id)
        if job is None or job.status != "RUNNING":
            state = job.status if job else "not of this scenario"
            out.append(Violation(job_id, f"still queued at the gate for {model_id} (job {state})"))
    return out


INVARIANTS: dict[str, tuple[str, Invariant]] = {
    "terminal_within_deadline": (
        "every job terminal within its deadline",
        terminal_within_deadline,
    ),
    "one_billed_task_per_job": (
        "no job with more than one billed provider task",
        one_billed_task_per_job,
    ),
    "succeeded_jobs_complete": (
        "succeeded jobs: video, last frame, manifest, ledger row; sha256 and tokens match",
        succeeded_jobs_complete,
    ),
    "no_orphan_ledger_rows": (
        "no ledger row without a job; row tokens = provider's billed tokens",
        no_orphan_ledger_rows,
    ),
    "states_only_forward": ("no job state moved backwards", states_only_forward),
    "billed_tasks_recorded": (
        "every billed task in the ledger with the provider's tokens",
        paid_work.billed_tasks_recorded,
    ),
    "billed_videos_stored": (
        "every billed succeeded task's video stored, sha256 matching",
        paid_work.billed_videos_stored,
    ),
    "money_recorded_equals_billed": (
        "money recorded = money billed, to the cent",
        paid_work.money_recorded_equals_billed,
    ),
    "no_open_multipart_uploads": (
        "no multipart upload left open in the bucket",
        paid_work.no_open_multipart_uploads,
    ),
    "no_slot_leaked": (
        "no capacity slot leaked: every slot held has a live provider task",
        no_slot_leaked,
    ),
}


def check_all(ev: Evidence) -> dict[str, list[Violation]]:
    return {key: check(ev) for key, (_, check) in INVARIANTS.items()}
