"""The paid-work invariants on hand-built evidence (tests/chaos/test_invariants.py builds it):
each kind of damage the issue's harness found (a billed task with no row, a row with 0 tokens,
a rerun's row or video replacing the first run's, money off by a cent, an upload left open) is
reported against the task, the job or the currency, and clean evidence holds."""

from __future__ import annotations

from datetime import UTC, datetime

from chaos.evidence import Evidence, StoredFile
from chaos.invariants import check_all, one_billed_task_per_job
from chaos.paid_work import (
    billed_tasks_recorded,
    billed_videos_stored,
    money,
    money_recorded_equals_billed,
    no_open_multipart_uploads,
    provider_killed_urls,
)
from seedance_pipeline.core.models import Outcome, UnattributedTask
from seedance_pipeline.core.pricing import cost
from tests.chaos.test_invariants import SHA, TOKENS, clean, row, subjects, task


def _cancelled_with_a_billed_task(ev: Evidence) -> Evidence:
    """j1 was cancelled while running; the task succeeded and billed; the job's row said 0."""
    record = ev.jobs["j1"].record
    assert record is not None
    record.outcome = Outcome.CANCELLED
    ev.ledger[0] = row("j1", "t1", tokens=0)
    return ev


def test_clean_evidence_holds_the_paid_work_invariants() -> None:
    found = check_all(clean())
    for key in (
        "billed_tasks_recorded",
        "billed_videos_stored",
        "money_recorded_equals_billed",
        "no_open_multipart_uploads",
    ):
        assert found[key] == [], key


def test_a_billed_task_without_a_row_names_the_task_and_how_its_job_ended() -> None:
    ev = clean()
    ev.ledger.pop(0)
    (found,) = billed_tasks_recorded(ev)
    assert found.subject == "task:t1"
    assert f"billed {TOKENS} tokens" in found.detail and "job j1 ended succeeded" in found.detail


def test_a_row_with_zero_tokens_for_a_billed_task_is_reported() -> None:
    ev = _cancelled_with_a_billed_task(clean())
    (found,) = billed_tasks_recorded(ev)
    assert "records 0 tokens (billed=False)" in found.detail
    assert subjects(money_recorded_equals_billed(ev)) == {"money:USD"}


def test_one_bill_in_two_rows_is_reported() -> None:
    ev = clean()
    ev.ledger.append(row("j1", "t1").model_copy(update={"run": "run-2"}))
    (found,) = billed_tasks_recorded(ev)
    assert "in 2 ledger rows" in found.detail and "j1/run-2/1" in found.detail


def test_an_unattributed_record_counts_as_recorded() -> None:
    ev = clean()
    ev.ledger.pop(0)
    ev.unattributed.append(
        UnattributedTask(
            task_id="t1",
            route="byteplus",
            model_id="m",
            status="succeeded",
            tokens=TOKENS,
            unit_price=3.5,
            currency="USD",
            cost=cost(TOKENS, 3.5),
            candidates=["j1", "j2"],
            seen_at=datetime(2026, 11, 24, tzinfo=UTC),
        )
    )
    assert billed_tasks_recorded(ev) == []
    assert money_recorded_equals_billed(ev) == []


def test_a_billed_video_not_stored_is_reported_against_its_job() -> None:
    ev = clean()
    ev.stored_videos["j2"] = []
    (found,) = billed_videos_stored(ev)
    assert found.subject == "j2" and "t2" in found.detail


def test_a_stored_video_with_other_bytes_does_not_count() -> None:
    ev = clean()
    ev.stored_videos["j1"] = [StoredFile(exists=True, size=1000, sha256="c" * 64)]
    assert subjects(billed_videos_stored(ev)) == {"j1"}


def test_a_rerun_overwriting_the_first_runs_video_is_reported() -> None:
    """Two runs of j1, both billed, the same bytes (the emulator's video is per shape), one
    object: the second run wrote over the first."""
    ev = clean()
    ev.tasks.append(task("t1b", "j1"))
    ev.digests[("t1b", "video.mp4")] = {"sha256": SHA, "size": 1000}
    ev.ledger.append(row("j1", "t1b").model_copy(update={"run": "run-2"}))
    ev.runs = {"j1": 2}
    (found,) = billed_videos_stored(ev)
    assert "t1b" in found.detail and "object of its own" in found.detail
    ev.stored_videos["j1"].append(StoredFile(exists=True, size=1000, sha256=SHA))
    assert billed_videos_stored(ev) == []
    assert one_billed_task_per_job(ev) == []  # two billed tasks in two runs is fine


def test_a_url_the_provider_expired_early_is_listed_not_judged() -> None:
    ev = clean()
    ev.tasks[1]["faults"] = ["url_expires_early"]
    ev.stored_videos["j2"] = []
    assert billed_videos_stored(ev) == []
    assert provider_killed_urls(ev) == ["t2"]


def test_money_is_compared_to_the_cent_per_currency() -> None:
    ev = clean()
    owed, ours, _ = money(ev)
    assert owed == ours and set(owed) == {"USD"}
    ev.ledger[0] = ev.ledger[0].model_copy(update={"cost": ev.ledger[0].cost + 0.0004})
    assert money_recorded_equals_billed(ev) == []  # within the cent
    ev.ledger[0] = ev.ledger[0].model_copy(update={"cost": ev.ledger[0].cost + 0.02})
    (found,) = money_recorded_equals_billed(ev)
    assert found.subject == "money:USD" and "difference -0.02" in found.detail


def test_a_task_of_a_model_with_no_price_is_reported() -> None:
    ev = clean()
    ev.tasks[0]["model"] = "unknown-model"
    assert "task:t1" in subjects(money_recorded_equals_billed(ev))


def test_open_multipart_uploads_are_reported() -> None:
    ev = clean()
    ev.open_uploads = ["videos/2026/11/24/j1/run/video.mp4 (upload abc, begun now)"]
    (found,) = no_open_multipart_uploads(ev)
    assert found.subject == "s3:videos/2026/11/24/j1/run/video.mp4"
