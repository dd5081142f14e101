"""Contract tests: `ProviderClient` parses the recorded shapes of real answers
(tests/adapters/recorded.py) into the right task record and outcome, served over loopback
HTTP exactly as recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from seedance_pipeline.adapters.provider_client import ProviderClient, ProviderHTTPError
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import Outcome
from seedance_pipeline.core.outcomes import classify_http, classify_task_failure
from seedance_pipeline.core.settings import RouteSettings, Settings
from tests.adapters import recorded
from tests.webhook.support import serve

TASKS = {
    t["id"]: t
    for t in (
        recorded.SUCCEEDED_BYTEPLUS,
        recorded.SUCCEEDED_VOLCENGINE,
        recorded.FAILED_MODERATION,
    )
}


async def _task(request: Request) -> JSONResponse:
    task_id = request.path_params["task_id"]
    if task_id in recorded.ERRORS:
        status, body = recorded.ERRORS[task_id]
        return JSONResponse(body, status_code=status)
    return JSONResponse(TASKS[task_id])


async def _list(request: Request) -> JSONResponse:
    return JSONResponse(recorded.GO_SDK_LIST)


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/api/v3/contents/generations/tasks", _list),
            Route("/api/v3/contents/generations/tasks/{task_id}", _task),
        ]
    )
    with serve(app) as url:
        yield url + "/api/v3"


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ARK_API_KEY", "ark-contract-test-key")
    return load_settings()


def _route(settings: Settings, name: str, base: str) -> RouteSettings:
    return settings.route(name).model_copy(update={"base_url": base})


async def _get(route: RouteSettings, task_id: str) -> Any:
    async with httpx.AsyncClient() as http:
        return await ProviderClient(http).get(route, "byteplus", task_id)


async def test_succeeded_byteplus_task_with_a_tos_url_and_output_format(
    provider: str, shipped: Settings
) -> None:
    route = _route(shipped, "byteplus", provider)
    task = await _get(route, recorded.SUCCEEDED_BYTEPLUS["id"])
    assert (task.status, task.terminal, task.error) == ("succeeded", True, None)
    assert task.usage.completion_tokens == 19845  # 864 x 480 x 49 / 1024: 24·d+1 at 2 s
    assert (task.resolution, task.ratio, task.duration) == ("480p", "16:9", 2)
    video = urlsplit(task.content.video_url)
    assert shipped.route("byteplus").allows_output_host(video.hostname or "")
    assert shipped.route("byteplus").allows_output_host(
        urlsplit(task.content.last_frame_url).hostname or ""
    )
    assert parse_qs(video.query)["X-Tos-Expires"] == ["86400"]


async def test_succeeded_volcengine_task(provider: str, shipped: Settings) -> None:
    route = _route(shipped, "volcengine", provider)
    task = await _get(
        route.model_copy(update={"api_key_env": "ARK_API_KEY"}), "cgt-20250613160030-2dvd7"
    )
    assert task.usage.completion_tokens == 108900
    assert shipped.route("volcengine").allows_output_host(
        urlsplit(task.content.video_url).hostname or ""
    )


async def test_failed_task_with_a_moderation_code(provider: str, shipped: Settings) -> None:
    task = await _get(_route(shipped, "byteplus", provider), recorded.FAILED_MODERATION["id"])
    assert task.status == "failed" and task.content is None
    assert task.error.code == "OutputVideoSensitiveContentDetected.PolicyViolation"
    assert task.error.message.startswith("The request failed because the output video")
    outcome = classify_task_failure(task.status, task.error.code)
    assert (outcome.outcome, outcome.retryable) == (Outcome.REJECTED_MODERATION, False)


async def test_go_sdk_list_items_with_failure_reason_and_no_resolution(
    provider: str, shipped: Settings
) -> None:
    async with httpx.AsyncClient() as http:
        total, items = await ProviderClient(http).list(
            _route(shipped, "byteplus", provider), "byteplus", model="dreamina-seedance-2-0-260128"
        )
    assert total == 2
    failed, chosen = items
    assert failed.error is not None and failed.error.code == "InternalServiceError"
    assert (failed.resolution, failed.ratio, failed.duration) == (None, None, None)
    outcome = classify_task_failure(failed.status, failed.error.code)
    assert (outcome.outcome, outcome.retryable) == (Outcome.FAILED_INFRA, True)
    assert chosen.duration == 9 and chosen.resolution is None
    assert chosen.content is not None and chosen.content.video_url is not None
    assert shipped.route("byteplus").allows_output_host(
        urlsplit(chosen.content.video_url).hostname or ""
    )


@pytest.mark.parametrize(
    ("name", "status", "code", "outcome", "retryable"),
    [
        ("rpm", 429, "ModelAccountRpmRateLimitExceeded", Outcome.FAILED_INFRA, True),
        ("model_not_open", 404, "ModelNotOpen", Outcome.FAILED_INPUT, False),
        (
            "input_moderation",
            400,
            "InputImageSensitiveContentDetected.PrivacyInformation",
            Outcome.REJECTED_MODERATION,
            False,
        ),
    ],
)
async def test_error_bodies(
    provider: str,
    shipped: Settings,
    name: str,
    status: int,
    code: str,
    outcome: Outcome,
    retryable: bool,
) -> None:
    with pytest.raises(ProviderHTTPError) as caught:
        await _get(_route(shipped, "byteplus", provider), name)
    error = caught.value
    assert (error.status, error.code, error.retry_after) == (status, code, None)
    got = classify_http(error.status, error.code)
    assert (got.outcome, got.retryable) == (outcome, retryable)
