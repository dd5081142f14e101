"""The job book's rules and the inbox's callback rules, with no Temporal server: the book gets a
fake clock and a list for its search-attribute upserts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ApplicationError

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import (
    GenerationInput,
    GenerationRequest,
    JobState,
    Outcome,
    ProviderCallback,
)
from seedance_pipeline.workflows.generation.book import JobBook
from seedance_pipeline.workflows.generation.inbox import Inbox, take_callback
from tests.workflows.support import TOKENS, model, task


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def open_book() -> tuple[JobBook, list[Sequence[SearchAttributeUpdate[Any]]]]:
    upserts: list[Sequence[SearchAttributeUpdate[Any]]] = []
    inp = GenerationInput(job_id="job-1", request=GenerationRequest(prompt="p", duration=4))
    return JobBook.open(inp, "job-1", clock=Clock(), upsert=upserts.append), upserts


def names(upsert: Sequence[SearchAttributeUpdate[Any]]) -> set[str]:
    return {u.key.name for u in upsert}


def accepted(book: JobBook, task_id: str = "t1") -> None:
    book.start_attempt(model())
    book.task_accepted(task_id)


class TestStates:
    def test_a_new_book_is_received_with_one_timeline_entry(self) -> None:
        book, upserts = open_book()
        assert book.record.state == JobState.RECEIVED
        assert [s.state for s in book.record.timeline] == [JobState.RECEIVED]
        assert upserts == []  # the start published it, or nothing did: both histories match

    def test_states_only_move_forward(self) -> None:
        book, _ = open_book()
        book.move_to(JobState.RUNNING)
        book.move_to(JobState.QUEUED)
        assert book.record.state == JobState.RUNNING

    def test_terminal_states_never_move(self) -> None:
        book, _ = open_book()
        book.move_to(JobState.CANCELLED)
        book.move_to(JobState.SUCCEEDED)
        assert book.record.state == JobState.CANCELLED and book.finished

    def test_submitting_waits_for_the_next_visible_change(self) -> None:
        book, upserts = open_book()
        book.move_to(JobState.SUBMITTING)
        assert upserts == []
        book.move_to(JobState.QUEUED)
        assert len(upserts) == 1 and upserts[0][0].value == "queued"

    def test_model_attributes_ride_with_the_next_state(self) -> None:
        book, upserts = open_book()
        book.use_model(model("fast"), fallback=True)
        assert upserts == []
        book.move_to(JobState.QUEUED)
        assert names(upserts[0]) == {"Model", "ModelId", "Route", "Fallback", "JobState"}


class TestAttempts:
    def test_submit_numbers_are_places_in_the_record(self) -> None:
        book, _ = open_book()
        assert [book.start_attempt(model()).submit_no for _ in range(3)] == [1, 2, 3]

    def test_an_answer_before_any_create_is_an_invariant_break(self) -> None:
        book, _ = open_book()
        with pytest.raises(ApplicationError) as info:
            book.apply(task("t1", "running"))
        assert info.value.type == et.INVARIANT_BROKEN and info.value.non_retryable

    def test_provider_status_only_moves_forward(self) -> None:
        book, _ = open_book()
        accepted(book)
        assert book.apply(task("t1", "running"))
        assert not book.apply(task("t1", "queued"))
        assert book.apply(task("t1", "succeeded"))
        assert not book.apply(task("t1", "running"))
        assert book.record.provider_status == "succeeded"

    def test_success_takes_the_bill_and_the_urls(self) -> None:
        book, _ = open_book()
        accepted(book)
        book.apply(task("t1", "succeeded", duration=5, ratio="9:16"))
        rec = book.record
        assert rec.tokens == TOKENS and book.attempt.billed_tokens == TOKENS
        assert rec.duration == 5 and rec.ratio == "9:16"
        assert rec.provider_video_url and rec.provider_video_url.endswith("t1.mp4")

    def test_billed_cost_uses_each_attempts_own_price(self) -> None:
        book, _ = open_book()
        for price in (3.5, 5.6):
            book.start_attempt(model(unit_price=price))
            book.attempt.billed_tokens = 1_000_000
        assert book.billed_cost() == 9.1


class TestClose:
    def test_closing_publishes_outcome_cost_and_error_with_the_final_state(self) -> None:
        book, upserts = open_book()
        book.use_model(model(), fallback=False)
        accepted(book)
        book.apply(task("t1", "succeeded"))
        book.close(Outcome.SUCCEEDED, None)
        book.final_state()
        last = names(upserts[-1])
        assert {"Outcome", "CostUsd", "JobState"} <= last
        assert book.record.state == JobState.SUCCEEDED

    def test_a_rejected_job_ends_in_the_rejected_state(self) -> None:
        book, _ = open_book()
        book.close(Outcome.REJECTED_MODERATION, None)
        book.final_state()
        assert book.record.state == JobState.REJECTED


class TestCallbacks:
    @staticmethod
    def callback(submit_no: int, status: str, task_id: str = "t1") -> ProviderCallback:
        return ProviderCallback(
            submit_no=submit_no, task=task(task_id, status), received_at=datetime.now(UTC)
        )

    def test_a_task_announcing_itself_during_its_create_is_kept_for_the_create(self) -> None:
        book, _ = open_book()
        inbox = Inbox(creating=1)
        take_callback(book, inbox, self.callback(1, "queued", "t9"))
        assert inbox.announced[1].id == "t9" and book.record.provider_task_id is None

    def test_a_terminal_callback_only_asks_for_a_confirming_get(self) -> None:
        book, _ = open_book()
        accepted(book)
        inbox = Inbox()
        take_callback(book, inbox, self.callback(1, "succeeded"))
        assert inbox.terminal_hint and book.record.provider_status is None

    def test_a_running_callback_moves_the_job_forward(self) -> None:
        book, _ = open_book()
        accepted(book)
        take_callback(book, Inbox(), self.callback(1, "running"))
        assert book.record.state == JobState.RUNNING

    def test_callbacks_for_another_task_are_noted_then_only_counted(self) -> None:
        book, _ = open_book()
        accepted(book)
        for _ in range(8):
            take_callback(book, Inbox(), self.callback(1, "running", "someone-else"))
        assert book.record.callbacks_ignored == 8
        assert len(book.record.notes) == 6  # five notes and one saying the rest are counted

    def test_a_malformed_signal_is_counted_with_its_argument_count(self) -> None:
        book, _ = open_book()
        take_callback(book, Inbox(), None, args=3)
        assert book.record.notes == ["ignored a malformed callback signal (3 args)"]
