"""`/v1/jobs` and `/v1/estimate` through the real HTTP API, on the dev server with the
emulator and the real workers: submit, status, list, cancel, estimate, idempotency, tenancy
and authentication."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from seedance_pipeline.api_client import ApiError, JobCreate
from seedance_pipeline.core.estimate import estimate
from seedance_pipeline.core.models import GenerationRequest, JobState, Outcome
from seedance_pipeline.core.pricing import cost, estimate_tokens
from tests.api.conftest import ApiEnv


def prompt(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}: a red fox in snow"


async def test_submit_then_status_and_list(api: ApiEnv) -> None:
    body = JobCreate(prompt=prompt("submit"), metadata={"order": "17"})
    created = await api.client.create_job(body)
    assert not created.replayed
    job = created.job
    assert job.job_id.startswith(f"{api.acme.name}:job-")
    assert job.tenant == api.acme.name and job.metadata == {"order": "17"}
    assert job.links.job == f"{api.url}/v1/jobs/{job.job_id}"

    done = await asyncio.wait_for(api.client.wait(job.job_id, interval=0.2), 60)
    assert done.outcome == Outcome.SUCCEEDED
    assert done.video_uri and done.links.video == f"{api.url}/v1/jobs/{job.job_id}/video"
    assert done.execution_status is not None

    async def listed() -> list[str]:
        page = await api.client.list_jobs(outcome="succeeded")
        return [row.job_id for row in page.items]

    for _ in range(50):  # visibility follows the close by a moment
        if job.job_id in await listed():
            break
        await asyncio.sleep(0.1)
    assert job.job_id in await listed()
    assert job.job_id not in [
        r.job_id for r in (await api.client.list_jobs(outcome="cancelled")).items
    ]


async def test_list_pages_with_a_cursor(api: ApiEnv) -> None:
    ids = [
        (await api.client.create_job(JobCreate(prompt=prompt("page")))).job.job_id for _ in range(3)
    ]
    seen: list[str] = []
    for _ in range(50):
        first = await api.client.list_jobs(limit=2)
        if first.next_cursor:
            break
        await asyncio.sleep(0.1)
    seen += [r.job_id for r in first.items]
    assert first.next_cursor
    second = await api.client.list_jobs(limit=2, cursor=first.next_cursor)
    seen += [r.job_id for r in second.items]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))


async def test_same_idempotency_key_twice_is_one_job_and_one_provider_task(api: ApiEnv) -> None:
    body = JobCreate(prompt=prompt("idem"))
    key = f"order-{uuid.uuid4().hex[:8]}"
    first = await api.client.create_job(body, idempotency_key=key)
    second = await api.client.create_job(body, idempotency_key=key)
    assert first.job.job_id == second.job.job_id == f"{api.acme.name}:{key}"
    assert not first.replayed and second.replayed
    done = await asyncio.wait_for(api.client.wait(first.job.job_id, interval=0.2), 60)
    again = await api.client.create_job(body, idempotency_key=key)  # after the job finished
    assert again.replayed and again.job.outcome == Outcome.SUCCEEDED
    tasks = await api.pipeline.tasks_for(done)
    assert len(tasks) == 1, tasks


async def test_same_key_with_another_body_is_422(api: ApiEnv) -> None:
    key = f"k-{uuid.uuid4().hex[:8]}"
    await api.client.create_job(JobCreate(prompt=prompt("a")), idempotency_key=key)
    with pytest.raises(ApiError) as refused:
        await api.client.create_job(JobCreate(prompt=prompt("b")), idempotency_key=key)
    assert refused.value.status == 422
    assert refused.value.code == "idempotency_key_reused"
    assert refused.value.fields[0].field == "Idempotency-Key"


async def test_a_key_that_is_not_a_plain_token_is_hashed_into_the_id(api: ApiEnv) -> None:
    created = await api.client.create_job(
        JobCreate(prompt=prompt("odd key")), idempotency_key="user 7 / click #2"
    )
    assert created.job.job_id.startswith(f"{api.acme.name}::")


async def test_two_tenants_with_one_key_get_two_jobs(api: ApiEnv) -> None:
    key = f"shared-{uuid.uuid4().hex[:8]}"
    mine = await api.client.create_job(JobCreate(prompt=prompt("x")), idempotency_key=key)
    theirs = await api.other.create_job(JobCreate(prompt=prompt("y")), idempotency_key=key)
    assert mine.job.job_id != theirs.job.job_id
    assert not theirs.replayed


async def test_another_tenants_job_is_404(api: ApiEnv) -> None:
    job = (await api.client.create_job(JobCreate(prompt=prompt("private")))).job
    for call in (
        api.other.get_job(job.job_id),
        api.other.cancel_job(job.job_id),
        api.other.fetch_video(job.job_id),
    ):
        with pytest.raises(ApiError) as refused:
            await call
        assert refused.value.status == 404 and refused.value.code == "not_found"
    assert job.job_id not in [r.job_id for r in (await api.other.list_jobs()).items]
    with pytest.raises(ApiError) as unknown:
        await api.client.get_job(f"{api.acme.name}:no-such-job")
    assert unknown.value.status == 404


async def test_cli_jobs_are_no_tenants(api: ApiEnv) -> None:
    """A job started by the CLI (no tenant) is invisible through the API."""
    job_id = await api.pipeline.start(GenerationRequest(prompt=prompt("cli")))
    with pytest.raises(ApiError) as refused:
        await api.client.get_job(job_id)
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("headers", "code"),
    [({}, "missing_api_key"), ({"Authorization": "Bearer sdp_not-a-key"}, "invalid_api_key")],
)
async def test_a_missing_or_wrong_key_is_401(
    api: ApiEnv, headers: dict[str, str], code: str
) -> None:
    async with httpx.AsyncClient(base_url=api.url) as http:
        for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/costs")):
            response = await http.request(method, path, headers=headers, json={"prompt": "x"})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == code
            assert response.headers["www-authenticate"] == "Bearer"


async def test_a_bad_request_is_422_naming_the_field_and_reaches_no_provider(api: ApiEnv) -> None:
    before = await api.pipeline.create_calls()
    async with httpx.AsyncClient(base_url=api.url) as http:
        response = await http.post(
            "/v1/jobs",
            headers={"Authorization": f"Bearer {api.acme.key}"},
            json={"prompt": "a fox", "model": "mini", "resolution": "1080p", "duration": 99},
        )
    assert response.status_code == 422
    fields = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert "allowed: 480p, 720p" in fields["resolution"]
    assert "allowed:" in fields["duration"]
    async with httpx.AsyncClient(base_url=api.url) as http:
        shape = await http.post(
            "/v1/jobs",
            headers={"Authorization": f"Bearer {api.acme.key}"},
            json={"prompt": "a fox", "service_tier": "cheap", "metadata": {"k": "v" * 600}},
        )
    assert shape.status_code == 422
    named = {f["field"] for f in shape.json()["error"]["fields"]}
    assert {"service_tier", "metadata"} <= named
    assert await api.pipeline.create_calls() == before


async def test_cancel(api: ApiEnv) -> None:
    word = f"cq{uuid.uuid4().hex[:8]}"
    await api.pipeline.emulator.aset_faults(
        [{"kind": "stuck", "phase": "queued", "match": {"prompt_contains": word}}]
    )
    job = (await api.client.create_job(JobCreate(prompt=f"cancel {word}"))).job
    for _ in range(200):
        if (await api.client.get_job(job.job_id)).state == JobState.QUEUED:
            break
        await asyncio.sleep(0.05)
    cancelled = await api.client.cancel_job(job.job_id)
    assert cancelled.job_id == job.job_id
    final = await asyncio.wait_for(api.client.wait(job.job_id, interval=0.2), 30)
    assert final.outcome == Outcome.CANCELLED
    assert final.error and "deleted while queued" in final.error.message
    with pytest.raises(ApiError) as again:
        for _ in range(50):  # the workflow closes right after its record turns cancelled
            await api.client.cancel_job(job.job_id)
            await asyncio.sleep(0.1)
    assert again.value.status == 409 and again.value.code == "job_finished"


async def test_estimate_matches_the_pricing_rules(api: ApiEnv) -> None:
    body = JobCreate(prompt="a fox", model="mini", duration=5, resolution="720p", ratio="16:9")
    found = await api.client.estimate(body)
    settings = api.pipeline.settings
    spec = settings.model("mini")
    tokens = estimate_tokens(spec.pixel_table, "720p", "16:9", 5)
    assert found.tokens == tokens
    assert found.cost == cost(tokens, spec.prices["byteplus"].standard)
    assert found.model_dump() == estimate(body.generation_request(), settings).__dict__
    with pytest.raises(ApiError) as refused:
        await api.client.estimate({"prompt": "a fox", "duration": 99})
    assert refused.value.status == 422
