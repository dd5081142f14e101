"""Every exit of TaskFollowerWorkflow, on scripted activities (tests/workflows/follow_support.py):
a task that succeeds after its job ended is billed and stored; GET outages are waited out; a
gone, failed or discarded task is recorded as such; copies get fresh URLs and stop when none is
left; the follower gives up past the task's own expiry; long follows continue as new; a bad
input fails the follower with the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from seedance_pipeline.core import error_types as et
from seedance_pipeline.core.follow import FollowOutcome
from seedance_pipeline.core.models import GenerationRequest, Outcome, ProviderError
from seedance_pipeline.core.pricing import cost
from seedance_pipeline.worker import WORKFLOW_RUNNER
from seedance_pipeline.workflows import follow_task
from seedance_pipeline.workflows.follow_task import TaskFollowerWorkflow
from tests.workflows.follow_support import (
    TOKENS,
    UNIT_PRICE,
    FollowScript,
    error,
    follow_activities,
    follow_input,
    run_follower,
    start_follower,
    task,
)


async def test_a_task_that_succeeds_after_its_job_ended_is_billed_then_stored(
    client: Client,
) -> None:
    inp = follow_input(job_outcome=Outcome.CANCELLED)
    script = FollowScript(
        gets=[
            task(inp.task_id, "running"),
            task(inp.task_id, "running"),
            task(inp.task_id, "succeeded"),
        ]
    )
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.STORED and result.provider_status == "succeeded"
    assert (result.tokens, result.cost) == (TOKENS, cost(TOKENS, UNIT_PRICE))
    # The bill is recorded before the copy, then the row says what happened to the video.
    assert [(e.outcome, e.tokens, e.billed) for e in script.ledger] == [
        (FollowOutcome.BILLED.value, TOKENS, True),
        (FollowOutcome.STORED.value, TOKENS, True),
    ]
    assert {(e.job_id, e.run, e.submit_no, e.provider_task_id) for e in script.ledger} == {
        (inp.job_id, "run-1", 1, inp.task_id)
    }
    assert [(c.kind, c.run, c.followed_submit_no) for c in script.copied] == [
        ("video", "run-1", 1),
        ("last_frame", "run-1", 1),
    ]
    assert result.video is not None and result.last_frame is not None and result.manifest_uri
    (manifest,) = script.manifests
    assert manifest.followed_submit_no == 1 and manifest.run == "run-1"
    assert manifest.manifest["kind"] == "followed_task"
    assert manifest.manifest["job_outcome"] == "cancelled"
    assert manifest.manifest["outputs"]["video"]["uri"] == result.video.uri


async def test_a_get_outage_past_the_reads_retries_is_waited_out(client: Client) -> None:
    inp = follow_input()
    down = error(et.PROVIDER_UNAVAILABLE, retry_after=1)
    script = FollowScript(gets=[down, down, down, down, task(inp.task_id, "succeeded")])
    followed = await run_follower(client, script, inp)
    assert followed.result.outcome == FollowOutcome.STORED
    view = followed.view
    assert view.progress.get_failures == 1 and view.progress.polls == 1
    assert any("still following" in n for n in view.progress.notes)
    assert script.calls["get_task"] == 5


async def test_a_task_the_provider_no_longer_knows_is_recorded_as_gone(client: Client) -> None:
    inp = follow_input()
    gone = error(et.PROVIDER_TASK_NOT_FOUND)
    script = FollowScript(gets=[task(inp.task_id, "running"), gone])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.GONE and result.provider_status == "running"
    assert [(e.outcome, e.tokens, e.billed) for e in script.ledger] == [
        (FollowOutcome.GONE.value, 0, False)
    ]
    assert script.calls["copy_output"] == 0


async def test_a_failed_task_is_recorded_unbilled_with_the_providers_error(
    client: Client,
) -> None:
    inp = follow_input()
    code = "OutputVideoSensitiveContentDetected.PolicyViolation"
    failed = task(inp.task_id, "failed", error=ProviderError(code=code, message="copyright"))
    script = FollowScript(gets=[failed])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.FAILED and result.tokens == 0
    (row,) = script.ledger
    assert (row.error_code, row.billed, row.outcome) == (code, False, "followed_failed")


async def test_discarding_records_the_bill_and_stores_nothing(client: Client) -> None:
    inp = follow_input(store=False)
    script = FollowScript(gets=[task(inp.task_id, "succeeded")])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.DISCARDED and result.video is None
    assert [(e.outcome, e.tokens) for e in script.ledger] == [("followed_discarded", TOKENS)]
    assert script.calls["copy_output"] == script.calls["write_manifest"] == 0


async def test_an_expired_url_is_replaced_by_a_fresh_one(client: Client) -> None:
    inp = follow_input()
    first = task(inp.task_id, "succeeded", url="https://out.example/a.mp4")
    fresh = task(inp.task_id, "succeeded", url="https://out.example/b.mp4")
    script = FollowScript(gets=[first, fresh], copies=[error(et.OUTPUT_URL_EXPIRED), None])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.STORED
    assert [c.url for c in script.copied] == [
        "https://out.example/b.mp4",
        "https://out.example/b.png",
    ]


async def test_a_provider_offering_only_a_dead_url_ends_not_stored(client: Client) -> None:
    inp = follow_input()
    script = FollowScript(
        gets=[task(inp.task_id, "succeeded", url="https://out.example/a.mp4")],
        copies=[error(et.OUTPUT_URL_EXPIRED)],
    )
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.NOT_STORED and result.video is None
    assert [(e.outcome, e.billed) for e in script.ledger][-1] == ("followed_not_stored", True)
    assert any("only that URL" in n for n in result.notes)


async def test_past_the_tasks_own_expiry_the_follower_gives_up(client: Client) -> None:
    now = datetime.now(UTC)
    inp = follow_input(
        accepted_at=now - timedelta(hours=2),
        request=GenerationRequest(prompt="slow", duration=4, execution_expires_after=3600),
        expiry_margin_seconds=0,
    )
    script = FollowScript(gets=[task(inp.task_id, "running")])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.ABANDONED and script.calls["get_task"] == 1
    assert [(e.outcome, e.tokens) for e in script.ledger] == [("followed_abandoned", 0)]


async def test_a_long_follow_continues_as_new_with_its_progress(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow_task, "POLLS_PER_RUN", 2)
    inp = follow_input()
    running = task(inp.task_id, "running")
    script = FollowScript(gets=[running, running, running, task(inp.task_id, "succeeded")])
    followed = await run_follower(client, script, inp)
    assert followed.result.outcome == FollowOutcome.STORED and followed.result.polls == 4
    first = client.get_workflow_handle(
        followed.handle.id, run_id=followed.handle.first_execution_run_id
    )
    assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW


async def test_a_malformed_input_fails_the_follower_with_the_reason(client: Client) -> None:
    queue = f"follow-{uuid.uuid4().hex[:10]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[TaskFollowerWorkflow],
        activities=follow_activities(FollowScript(gets=[task("t", "running")])),
        workflow_runner=WORKFLOW_RUNNER,
    ):
        handle = await start_follower(client, queue, {"job_id": 5}, f"bad-{uuid.uuid4().hex[:8]}")
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == et.FOLLOWER_INPUT_INVALID
    assert "task_id" in cause.message and "Field required" in cause.message


async def test_a_task_nobody_could_claim_is_recorded_unattributed_with_its_candidates(
    client: Client,
) -> None:
    inp = follow_input(unattributed_candidates=["job-a", "job-b"], store=False)
    script = FollowScript(gets=[task(inp.task_id, "running"), task(inp.task_id, "succeeded")])
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.UNATTRIBUTED and result.tokens == TOKENS
    (kept,) = script.unattributed
    assert (kept.task_id, kept.candidates, kept.tokens) == (inp.task_id, ["job-a", "job-b"], TOKENS)
    assert kept.cost == cost(TOKENS, UNIT_PRICE)
    assert script.calls["record_cost"] == script.calls["copy_output"] == 0


async def test_an_unattributed_candidate_claimed_meanwhile_is_left_to_its_owner(
    client: Client,
) -> None:
    inp = follow_input(unattributed_candidates=["job-a"], store=False)
    script = FollowScript(gets=[task(inp.task_id, "succeeded")], claimed_meanwhile=True)
    result = (await run_follower(client, script, inp)).result
    assert result.outcome == FollowOutcome.OWNED_ELSEWHERE
    assert script.unattributed == [] and script.calls["record_cost"] == 0
