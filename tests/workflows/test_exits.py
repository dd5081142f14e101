"""Every exit of the job, through the real workflow with scripted activities (tests/workflows/
support.py): each outcome, retry and fallback, ambiguous creates, deadlines, cancellation,
copy failures and a missing submit worker. Each test asserts the outcome, the calls that reached
the "provider" (so nothing is paid twice) and the workflow's final status in Temporal (a job that
does not succeed is a Failed workflow whose failure type is its outcome).
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from seedance_pipeline.clients.jobs import JobFinished
from seedance_pipeline.clients.ops import extend_job
from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.models import JobState, Outcome, ProviderCallback, Reference
from tests.workflows.support import (
    TOKENS,
    Script,
    app_error,
    failed,
    finish,
    job_input,
    model,
    run_job,
    scripted_worker,
    start,
    task,
    verdict,
)

FAILED = WorkflowExecutionStatus.FAILED


async def test_success_stores_the_video_and_records_the_bill(client: Client) -> None:
    ran = await run_job(client, Script(), return_last_frame=False)
    rec = ran.record
    assert ran.status == WorkflowExecutionStatus.COMPLETED
    assert rec.outcome == Outcome.SUCCEEDED and rec.state == JobState.SUCCEEDED
    assert rec.video_uri and rec.manifest_uri and rec.tokens == TOKENS
    assert rec.cost == round(TOKENS * 3.5 / 1e6, 6)
    assert [s.state for s in rec.timeline] == [
        JobState.RECEIVED,
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.RUNNING,
        JobState.STORING,
        JobState.SUCCEEDED,
    ]


async def test_success_writes_one_ledger_row_per_create(client: Client) -> None:
    script = Script()
    await run_job(client, script)
    assert script.calls["create_task"] == 1
    assert [(e.submit_no, e.tokens, e.billed) for e in script.ledger] == [(1, TOKENS, True)]


async def test_output_moderation_is_final_and_never_retried(client: Client) -> None:
    code = "OutputVideoSensitiveContentDetected.PolicyViolation"
    script = Script(gets={"t1": [failed("t1", code, "may be related to copyright")]})
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.REJECTED_MODERATION
    assert ran.record.error and ran.record.error.code == code
    assert ran.record.error.message == "may be related to copyright"  # verbatim
    assert script.calls["create_task"] == 1
    assert ran.status == FAILED


async def test_a_failed_job_is_a_failed_workflow_with_its_outcome_as_type(client: Client) -> None:
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import ApplicationError

    code = "OutputVideoSensitiveContentDetected"
    ran = await run_job(client, Script(gets={"t1": [failed("t1", code)]}))
    try:
        await ran.handle.result()
    except WorkflowFailureError as exc:
        assert isinstance(exc.cause, ApplicationError)
        assert exc.cause.type == Outcome.REJECTED_MODERATION.value
        assert exc.cause.details[0]["job_id"] == ran.record.job_id
    else:
        raise AssertionError("a rejected job completed its workflow")


async def test_input_moderation_at_create_is_final(client: Client) -> None:
    refused = app_error(
        et.PROVIDER_MODERATION,
        "InputTextSensitiveContentDetected",
        "rejected_moderation",
        non_retryable=True,
    )
    script = Script(creates=[refused])
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.REJECTED_MODERATION
    assert script.calls["create_task"] == 1 and script.calls["get_task"] == 0


async def test_an_invalid_request_ends_failed_input_before_any_create(client: Client) -> None:
    script = Script(resolve_error=app_error(et.REQUEST_INVALID, non_retryable=True))
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INPUT and ran.record.error
    assert ran.record.error.source == "validation"
    assert script.calls["create_task"] == 0 and ran.status == FAILED


async def test_a_breaker_that_cannot_answer_leaves_the_job_on_its_model(client: Client) -> None:
    """The breaker lookup (a local activity, whose failure the SDK raises bare) fails both its
    attempts: the job notes why and runs on the model it asked for, never failing for it."""
    models = {a: model(a, breaker=True) for a in ("mini", "fast", "pro")}
    script = Script(models=models, choose_error=app_error("RPCError", outcome="failed_infra"))
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert script.calls["choose_model"] == 2 and script.calls["create_task"] == 1
    assert ran.record.model_alias == "mini"
    assert any("breaker unavailable (RPCError from the script)" in n for n in ran.record.notes)


async def test_a_bad_reference_ends_failed_input_before_any_create(client: Client) -> None:
    script = Script(references_error=app_error(et.REFERENCE_INVALID, non_retryable=True))
    ref = Reference(url="https://refs.example/a.png", role="first_frame")
    ran = await run_job(client, script, references=(ref,))
    assert ran.record.outcome == Outcome.FAILED_INPUT
    assert script.calls["create_task"] == 0


async def test_a_budget_refusal_ends_failed_quota_before_any_create(client: Client) -> None:
    budgeted = {a: model(a, budgeted=True) for a in ("mini", "fast", "pro")}
    script = Script(models=budgeted, budget=verdict(allowed=False, message="daily cap 1.00 USD"))
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_QUOTA and ran.record.error
    assert ran.record.error.code == "BudgetExceeded"
    assert script.calls["create_task"] == 0 and script.calls["release_budget"] == 1


async def test_an_internal_failure_is_retried_once_on_the_same_model(client: Client) -> None:
    script = Script(gets={"t1": [failed("t1", "InternalServiceError")]})
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert [a.model_alias for a in ran.record.attempts] == ["mini", "mini"]
    assert len(script.ledger) == 2 and [e.billed for e in script.ledger] == [False, True]


async def test_sustained_task_failures_fall_back_to_the_next_model(client: Client) -> None:
    script = Script(
        gets={
            "t1": [failed("t1", "InternalServiceError")],
            "t2": [failed("t2", "InternalServiceError")],
        }
    )
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert [a.model_alias for a in ran.record.attempts] == ["mini", "mini", "fast"]
    assert ran.record.model_alias == "fast"


async def test_refused_creates_exhaust_the_chain_and_end_failed_infra(client: Client) -> None:
    refused = app_error(et.PROVIDER_UNAVAILABLE, "InternalServiceError")
    script = Script(creates=[refused])
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INFRA
    assert {a.model_alias for a in ran.record.attempts} == {"mini", "fast", "pro"}
    assert script.calls["get_task"] == 0


async def test_an_ambiguous_create_with_nothing_listed_creates_again(client: Client) -> None:
    script = Script(creates=[app_error(et.PROVIDER_AMBIGUOUS), "t2"])
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert script.calls["create_task"] == 2 and script.calls["find_tasks"] >= 1
    assert ran.record.provider_task_id == "t2"


async def test_polling_only_adopts_the_lone_unclaimed_listed_task(client: Client) -> None:
    orphan = task("orphan", "running", resolution="480p", duration=4)
    script = Script(creates=[app_error(et.PROVIDER_AMBIGUOUS)], listed=[orphan])
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert script.calls["create_task"] == 1  # never paid twice
    assert ran.record.provider_task_id == "orphan"


async def test_duration_any_matches_the_length_the_provider_chose(client: Client) -> None:
    """`duration: -1`: the listed task reports the chosen length (reference §0 C5)."""
    orphan = task("orphan", "running", resolution="480p", duration=7)
    done = task("orphan", "succeeded", resolution="480p", duration=7)
    script = Script(
        creates=[app_error(et.PROVIDER_AMBIGUOUS)], listed=[orphan], gets={"orphan": [done]}
    )
    ran = await run_job(client, script, duration=-1)
    assert script.calls["create_task"] == 1
    assert ran.record.provider_task_id == "orphan" and ran.record.duration == 7


async def test_a_task_another_job_claims_is_neither_adopted_nor_blocking(client: Client) -> None:
    theirs = task("theirs", "running", resolution="480p", duration=4)
    script = Script(
        creates=[app_error(et.PROVIDER_AMBIGUOUS), "t2"],
        listed=[theirs],
        owners={"theirs": "other-job"},
    )
    ran = await run_job(client, script)
    assert ran.record.provider_task_id == "t2" and script.calls["create_task"] == 2


async def test_unclaimed_candidates_with_callbacks_on_end_ambiguous_unpaid_twice(
    client: Client,
) -> None:
    with_callbacks = {a: model(a, callbacks_enabled=True) for a in ("mini", "fast", "pro")}
    listed = [
        task("a", "running", resolution="480p", duration=4),
        task("b", "queued", resolution="480p", duration=4),
    ]
    script = Script(
        models=with_callbacks, creates=[app_error(et.PROVIDER_AMBIGUOUS)], listed=listed
    )
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INFRA and ran.record.error
    assert ran.record.error.code == "AmbiguousSubmit"
    assert script.calls["create_task"] == 1


async def test_a_task_announced_by_callback_during_reconcile_is_adopted(client: Client) -> None:
    slow = {
        a: model(a, callbacks_enabled=True, reconcile_grace_seconds=5)
        for a in ("mini", "fast", "pro")
    }
    script = Script(models=slow, creates=[app_error(et.PROVIDER_AMBIGUOUS)])
    async with scripted_worker(client, script) as queue:
        inp = job_input()
        handle = await start(client, queue, inp)
        while script.calls["create_task"] < 1:
            await asyncio.sleep(0.02)
        callback = ProviderCallback(
            submit_no=1,
            task=task("announced", "queued"),
            received_at=task("x", "queued").created_at or 0,
        )
        await handle.signal("provider_callback", callback)
        ran = await finish(handle)
    assert ran.record.provider_task_id == "announced" and script.calls["create_task"] == 1


async def test_queue_deadline_cancels_the_task_at_the_provider(client: Client) -> None:
    short = {
        a: model(a, queue_deadline_seconds=1, poll_min_seconds=1, poll_max_seconds=1)
        for a in ("mini", "fast", "pro")
    }
    script = Script(models=short, gets={"t1": [task("t1", "queued")]})
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INFRA and ran.record.error
    assert ran.record.error.code == "QueueDeadlineExceeded"
    assert script.cancelled == ["t1"]


async def test_a_refused_cancel_at_the_queue_deadline_waits_on_for_the_task(
    client: Client,
) -> None:
    """The provider refuses the DELETE: the task has left the queue (it runs, or is done), so
    the job waits on to the execution deadline instead of ending; here the task succeeds."""
    short = {
        a: model(a, queue_deadline_seconds=1, poll_min_seconds=1, poll_max_seconds=1)
        for a in ("mini", "fast", "pro")
    }
    queued = task("t1", "queued")
    script = Script(
        models=short,
        gets={"t1": [queued, queued, task("t1", "succeeded")]},
        cancel_refused=True,
    )
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED, ran.record.error
    assert script.cancelled == ["t1"]
    assert any("cancel refused: it left the queue, waiting on" in n for n in ran.record.notes)


async def test_execution_deadline_ends_the_job_and_hands_the_running_task_over(
    client: Client,
) -> None:
    """No cancel (the provider cannot cancel a running task); its follower takes it."""
    short = {
        a: model(a, execution_deadline_seconds=1, poll_min_seconds=1, poll_max_seconds=1)
        for a in ("mini", "fast", "pro")
    }
    script = Script(models=short, gets={"t1": [task("t1", "running")]})
    ran = await run_job(client, script)
    assert ran.record.error and ran.record.error.code == "ExecutionDeadlineExceeded"
    assert script.cancelled == []
    assert [f.task_id for f in script.followed] == ["t1"]


async def _cancel_when(client: Client, script: Script, status: str) -> tuple[Script, object]:
    async with scripted_worker(client, script) as queue:
        handle = await start(client, queue, job_input())
        while (await handle.query("status")).get("provider_status") != status:
            await asyncio.sleep(0.02)
        await handle.cancel()
        return script, await finish(handle)


async def test_cancel_while_queued_deletes_the_task(client: Client) -> None:
    script, ran = await _cancel_when(client, Script(gets={"t1": [task("t1", "queued")]}), "queued")
    assert ran.record.outcome == Outcome.CANCELLED  # type: ignore[attr-defined]
    assert ran.status == WorkflowExecutionStatus.CANCELED  # type: ignore[attr-defined]
    assert script.cancelled == ["t1"]


async def test_cancel_while_running_hands_the_task_to_its_follower(client: Client) -> None:
    """A running task cannot be cancelled at the provider: it is billed work, followed to its
    end (bill recorded, video stored) while the job itself ends cancelled."""
    script, ran = await _cancel_when(
        client, Script(gets={"t1": [task("t1", "running")]}), "running"
    )
    rec = ran.record  # type: ignore[attr-defined]
    assert rec.outcome == Outcome.CANCELLED and script.cancelled == []
    assert "followed to its end" in rec.error.message
    [follow] = script.followed
    assert (follow.task_id, follow.store, follow.job_outcome) == ("t1", True, Outcome.CANCELLED)
    assert rec.followers == ["task-follower:byteplus:t1"]


async def test_an_extend_after_the_outcome_is_decided_says_already_finished(
    client: Client,
) -> None:
    """Cancelled while its task runs, the job's outcome is decided before its run closes (it
    hands the task to a follower first): an extend in that window is JobFinished, as after."""
    held = asyncio.Event()
    script = Script(gets={"t1": [task("t1", "running")]}, follow_held=held)
    async with scripted_worker(client, script) as queue:
        handle = await start(client, queue, job_input())
        while (await handle.query("status")).get("provider_status") != "running":
            await asyncio.sleep(0.02)
        await handle.cancel()
        while not script.calls["start_task_follower"]:  # decided: its follower is starting
            await asyncio.sleep(0.02)
        with pytest.raises(JobFinished, match=r"already finished \(cancelled\)"):
            await extend_job(client, handle.id, 5)
        held.set()
        ran = await finish(handle)
    assert ran.record.outcome == Outcome.CANCELLED and ran.record.deadline_extension_minutes == 0


async def test_an_operator_can_discard_what_a_cancelled_task_makes(client: Client) -> None:
    script = Script(gets={"t1": [task("t1", "running")]})
    async with scripted_worker(client, script) as queue:
        handle = await start(client, queue, job_input())
        while (await handle.query("status")).get("provider_status") != "running":
            await asyncio.sleep(0.02)
        await handle.signal("discard_outputs")
        await handle.cancel()
        await finish(handle)
    assert [f.store for f in script.followed] == [False]  # billed and recorded, not stored


async def test_an_output_url_that_stays_expired_ends_output_expired(client: Client) -> None:
    expired = app_error(et.OUTPUT_URL_EXPIRED, "AccessDenied", non_retryable=True)
    script = Script(copies=[expired])
    ran = await run_job(client, script)
    assert ran.record.error and ran.record.error.code == "OutputExpired"
    assert script.calls["copy_output"] == 1  # a fresh GET offered only the same URL
    assert script.ledger and script.ledger[0].billed  # billed work is still recorded
    assert [f.task_id for f in script.followed] == ["t1"]  # and followed, to store it later


async def test_a_refused_output_host_ends_failed_infra_billed_and_recorded(client: Client) -> None:
    script = Script(copies=[app_error(et.OUTPUT_HOST_REFUSED, non_retryable=True)])
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INFRA and ran.record.cost
    assert script.ledger[0].tokens == TOKENS


async def test_a_submit_queue_nobody_polls_is_a_classified_failure(client: Client) -> None:
    lonely = {
        a: model(a, submit_queue="nobody-polls-this", create_schedule_to_start_seconds=0.5)
        for a in ("mini", "fast", "pro")
    }
    script = Script(models=lonely)
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.FAILED_INFRA and ran.record.error
    assert ran.record.error.code == "SubmitQueueUnattended"
    assert "nobody-polls-this" in ran.record.error.message
    assert script.calls["create_task"] == 0


async def test_a_task_the_provider_no_longer_knows_ends_failed_infra(client: Client) -> None:
    gone = app_error(et.PROVIDER_TASK_NOT_FOUND, "NotFound", non_retryable=True)
    ran = await run_job(client, Script(gets={"t1": [gone]}))
    assert ran.record.outcome == Outcome.FAILED_INFRA and ran.record.error
    assert ran.record.error.code == "NotFound"


async def test_a_job_started_with_a_malformed_input_fails_with_the_reason(client: Client) -> None:
    script = Script()
    async with scripted_worker(client, script) as queue:
        handle = await client.start_workflow(
            "GenerationWorkflow", {"job": 1}, id=job_input().job_id, task_queue=queue
        )
        ran = await finish(handle)
    assert ran.record.outcome == Outcome.FAILED_INPUT and ran.record.error
    assert "invalid job input" in ran.record.error.message
    assert ran.status == FAILED and sum(script.calls.values()) == 0


async def test_a_get_outage_past_its_retries_keeps_the_job_waiting(client: Client) -> None:
    """The provider not answering is no news: the job keeps polling within its deadlines."""
    down = app_error(et.PROVIDER_UNAVAILABLE, "InternalServiceError", non_retryable=True)
    script = Script(gets={"t1": [down, down, task("t1", "running"), task("t1", "succeeded")]})
    ran = await run_job(client, script)
    assert ran.record.outcome == Outcome.SUCCEEDED
    assert sum("did not answer a GET" in n for n in ran.record.notes) == 2
    assert script.followed == []


async def test_a_listed_task_with_this_creates_seed_is_adopted(client: Client) -> None:
    from seedance_pipeline.core.fingerprint import Fingerprint

    inp = job_input()
    script = Script(creates=[app_error(et.PROVIDER_AMBIGUOUS)])
    async with scripted_worker(client, script) as queue:
        handle = await start(client, queue, inp)
        run = (await handle.describe()).run_id
        seed = Fingerprint(inp.job_id, run, 1).seed
        script.listed = [
            task("someone-elses", "running", resolution="480p", duration=4, seed=seed + 1),
            task("mine", "running", resolution="480p", duration=4, seed=seed),
        ]
        ran = await finish(handle)
    assert ran.record.provider_task_id == "mine" and script.calls["create_task"] == 1
    assert script.claims["mine"][0] == inp.job_id


async def test_a_listed_task_with_another_seed_is_never_adopted(client: Client) -> None:
    theirs = task("theirs", "running", resolution="480p", duration=4, seed=12345)
    script = Script(creates=[app_error(et.PROVIDER_AMBIGUOUS), "t2"], listed=[theirs])
    ran = await run_job(client, script)
    assert ran.record.provider_task_id == "t2" and script.calls["create_task"] == 2


async def test_a_candidate_another_create_claimed_is_not_adopted(client: Client) -> None:
    orphan = task("orphan", "running", resolution="480p", duration=4)
    script = Script(creates=[app_error(et.PROVIDER_AMBIGUOUS), "t2"], listed=[orphan])
    script.claims["orphan"] = ("another-job", "run-x", 1)
    ran = await run_job(client, script, seed=7)  # a pinned seed: only the claim can tell
    assert ran.record.provider_task_id == "t2"


async def test_an_ambiguous_end_follows_every_candidate_as_unattributed(client: Client) -> None:
    with_callbacks = {a: model(a, callbacks_enabled=True) for a in ("mini", "fast", "pro")}
    listed = [task(t, "running", resolution="480p", duration=4) for t in ("a", "b")]
    script = Script(
        models=with_callbacks, creates=[app_error(et.PROVIDER_AMBIGUOUS)], listed=listed
    )
    ran = await run_job(client, script, seed=7)
    assert ran.record.error and ran.record.error.code == "AmbiguousSubmit"
    assert sorted(f.task_id for f in script.followed) == ["a", "b"]
    assert all(f.unattributed_candidates == [ran.record.job_id] for f in script.followed)
