"""One output folder per run; a followed task's outputs beside the job's, never over them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from seedance_pipeline.core.layout import (
    FOLLOWED_LAYOUT,
    LEGACY_LAYOUT,
    RUN_LAYOUT,
    key_parts,
    layout_of,
)

AT = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)


def test_each_run_has_its_own_folder() -> None:
    first = key_parts("job-1", AT, "video.mp4", run="run-a")
    second = key_parts("job-1", AT, "video.mp4", run="run-b")
    assert first == ("2026", "11", "24", "job-1", "run-a", "video.mp4")
    assert first != second
    assert layout_of("run-a") == RUN_LAYOUT


def test_a_followed_tasks_outputs_sit_in_their_own_folder_of_the_run() -> None:
    parts = key_parts("job-1", AT, "video.mp4", run="run-a", followed_submit_no=2)
    assert parts == ("2026", "11", "24", "job-1", "run-a", "followed-2", "video.mp4")
    assert layout_of("run-a", 2) == FOLLOWED_LAYOUT


def test_records_from_before_runs_keep_the_old_place_and_dates_are_utc() -> None:
    beijing = AT.astimezone(timezone(timedelta(hours=8)))  # already the 25th there
    assert key_parts("job-1", beijing, "video.mp4") == ("2026", "11", "24", "job-1", "video.mp4")
    assert layout_of("") == LEGACY_LAYOUT
