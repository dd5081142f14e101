"""The paid-work invariants (issue 17), from the provider's side of the story: the emulator's
task log (which tasks it billed, how many tokens, for which job) and its file digests, against
the ledger (rows and unattributed tasks) and the stored objects.

6. billed_tasks_recorded: every task the provider billed has exactly one ledger row (or an
   unattributed record) with the provider's tokens, billed, whatever happened to its job.
7. billed_videos_stored: every billed succeeded task's video is stored, with the provider's
   sha256 and size, in its own object under its job's folders (a rerun's video beside the
   first run's, not over it). Tasks whose URL the provider itself killed early (the
   `url_expires_early` fault: no fresh URL exists) are not counted; they are listed apart.
8. money_recorded_equals_billed: per currency, the money the ledger records for the scenario's
   tasks equals what the provider bills for them (its tokens at the list price), to the cent.
9. no_open_multipart_uploads: no multipart upload is left open in the bucket (S3 runs), even
   after kills mid-copy.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from chaos.evidence import Evidence, job_of_task
from chaos.violations import Violation
from seedance_pipeline.core.models import LedgerEntry
from seedance_pipeline.core.pricing import cost

CENT = Decimal("0.01")
PROVIDER_KILLED_URL = "url_expires_early"


def billed(task: dict[str, Any]) -> int:
    return int(task.get("billed_tokens") or 0)


def scenario_tasks(ev: Evidence) -> list[dict[str, Any]]:
    """The tasks made for this scenario's jobs (the emulator's log holds only this scenario's,
    but a task whose prompt names no job of ours is not ours to judge)."""
    return [t for t in ev.tasks if job_of_task(t) in ev.jobs]


def billed_tasks_recorded(ev: Evidence) -> list[Violation]:
    rows: dict[str, list[LedgerEntry]] = {}
    for row in ev.ledger:
        rows.setdefault(row.provider_task_id or "", []).append(row)
    kept = {u.task_id: u for u in ev.unattributed}
    out: list[Violation] = []
    for task in scenario_tasks(ev):
        tokens = billed(task)
        if tokens <= 0:
            continue
        found = rows.get(task["id"], [])
        subject = f"task:{task['id']}"
        if len(found) > 1:
            keys = ", ".join(f"{r.job_id}/{r.run or '-'}/{r.submit_no}" for r in found)
            out.append(Violation(subject, f"one bill in {len(found)} ledger rows ({keys})"))
        elif found and (found[0].tokens != tokens or not found[0].billed):
            row = found[0]
            out.append(
                Violation(
                    subject,
                    f"ledger row {row.job_id}/{row.run or '-'}/{row.submit_no} records "
                    f"{row.tokens} tokens (billed={row.billed}); the provider billed {tokens}",
                )
            )
        elif not found and task["id"] in kept and kept[task["id"]].tokens != tokens:
            out.append(Violation(subject, f"unattributed with {kept[task['id']].tokens} tokens"))
        elif not found and task["id"] not in kept:
            out.append(Violation(subject, f"billed {tokens} tokens; {_unrecorded(ev, task)}"))
    return out


def _unrecorded(ev: Evidence, task: dict[str, Any]) -> str:
    job = ev.jobs.get(job_of_task(task) or "")
    rec = job.record if job else None
    if rec is None:
        return "no ledger row records it"
    ending = f"{rec.outcome.value if rec.outcome else 'no outcome'}"
    if rec.error is not None:
        ending += f" ({rec.error.code})"
    return f"no ledger row records it (job {rec.job_id} ended {ending})"


def billed_videos_stored(ev: Evidence) -> list[Violation]:
    out: list[Violation] = []
    wanted: dict[str, list[tuple[str, tuple[str, int]]]] = {}
    for task in scenario_tasks(ev):
        if task.get("status") != "succeeded" or billed(task) <= 0:
            continue
        if PROVIDER_KILLED_URL in (task.get("faults") or []):
            continue
        digest = ev.digests.get((task["id"], "video.mp4"))
        job_id = job_of_task(task) or ""
        if digest is None:
            out.append(Violation(job_id, f"the emulator has no video for billed task {task['id']}"))
            continue
        wanted.setdefault(job_id, []).append((task["id"], (digest["sha256"], int(digest["size"]))))
    for job_id, tasks in wanted.items():
        have = Counter((f.sha256, f.size) for f in ev.stored_videos.get(job_id, []) if f.exists)
        for task_id, key in tasks:
            if have[key] > 0:
                have[key] -= 1  # one object per billed task: a rerun must not overwrite
                continue
            out.append(
                Violation(
                    job_id,
                    f"billed task {task_id}'s video (sha256 {key[0][:12]}, {key[1]} B) is not "
                    f"stored in an object of its own",
                )
            )
    return out


def provider_killed_urls(ev: Evidence) -> list[str]:
    """Billed succeeded tasks the emulator made undownloadable on purpose (listed, not judged)."""
    return [
        t["id"]
        for t in scenario_tasks(ev)
        if billed(t) > 0 and PROVIDER_KILLED_URL in (t.get("faults") or [])
    ]


def money(ev: Evidence) -> tuple[dict[str, Decimal], dict[str, Decimal], list[Violation]]:
    """(billed by the provider, recorded by us) per currency, and tasks with no known price."""
    ids = {t["id"] for t in scenario_tasks(ev)}
    owed: dict[str, Decimal] = {}
    recorded: dict[str, Decimal] = {}
    unpriced: list[Violation] = []
    for task in scenario_tasks(ev):
        if billed(task) <= 0:
            continue
        price = ev.prices.get(str(task.get("model")))
        if price is None:
            unpriced.append(Violation(f"task:{task['id']}", f"no price for {task.get('model')}"))
            continue
        _add(owed, price[1], cost(billed(task), price[0]))
    for row in ev.ledger:
        if row.billed and row.provider_task_id in ids:
            _add(recorded, row.currency, row.cost)
    for kept in ev.unattributed:
        if kept.task_id in ids:
            _add(recorded, kept.currency, kept.cost)
    return owed, recorded, unpriced


def _add(totals: dict[str, Decimal], currency: str, amount: float) -> None:
    totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(amount))


def money_recorded_equals_billed(ev: Evidence) -> list[Violation]:
    owed, recorded, out = money(ev)
    for currency in sorted(set(owed) | set(recorded)):
        bill = owed.get(currency, Decimal(0)).quantize(CENT)
        ours = recorded.get(currency, Decimal(0)).quantize(CENT)
        if bill != ours:
            out.append(
                Violation(
                    f"money:{currency}",
                    f"the ledger records {ours} {currency}; the provider billed {bill} "
                    f"{currency} (difference {bill - ours})",
                )
            )
    return out


def no_open_multipart_uploads(ev: Evidence) -> list[Violation]:
    return [Violation(f"s3:{u.split(' ', 1)[0]}", f"left open: {u}") for u in ev.open_uploads]
