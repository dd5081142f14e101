"""Attacks the provider client with whatever a broken or hostile endpoint can answer: random
bytes, JSON of every type, task objects with missing or wrong-typed fields and unknown
statuses, error bodies with huge messages, bodies of several MB and one that never ends.

Every answer becomes a `ProviderTask` (create: a task ID) or one of the client's own errors
(`ProviderBadResponse`, `ProviderHTTPError`, `ProviderAmbiguous`), with a bounded message; the
client never holds more than its body limit in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from seedance_pipeline.activities.errors import to_application_error
from seedance_pipeline.adapters.provider_client import (
    MAX_BODY_BYTES,
    ProviderAmbiguous,
    ProviderBadResponse,
    ProviderClient,
    ProviderHTTPError,
)
from seedance_pipeline.core.models import TERMINAL_PROVIDER_STATUSES
from seedance_pipeline.core.settings import RouteSettings
from tests.webhook.support import serve

KEY_ENV = "SECURITY_TEST_PROVIDER_KEY"
MAX_MESSAGE = 4096
KNOWN_STATUSES = {"queued", "running", *TERMINAL_PROVIDER_STATUSES}


class Answer:
    """What the fake provider says next (set by each example)."""

    status = 200
    body = b"{}"
    retry_after: str | None = None
    paths: list[str] = []


async def _answer(request: Request) -> Response:
    Answer.paths.append(request.scope["raw_path"].decode())
    headers = {"Retry-After": Answer.retry_after} if Answer.retry_after is not None else {}
    return Response(
        Answer.body, status_code=Answer.status, media_type="application/json", headers=headers
    )


async def _endless(request: Request) -> Response:
    async def forever() -> AsyncIterator[bytes]:
        yield b'{"id": "cgt-1", "status": "running", "padding": "'
        chunk = b"x" * 65536
        while True:
            yield chunk
            await asyncio.sleep(0)

    return StreamingResponse(forever(), media_type="application/json")


@pytest.fixture(scope="module")
def provider_url() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/api/v3/contents/generations/tasks", _answer, methods=["POST", "GET"]),
            Route("/api/v3/contents/generations/tasks/{task_id}", _answer),
            Route("/endless/contents/generations/tasks/{task_id}", _endless),
            Route("/api/v3/{rest:path}", _answer, methods=["GET", "POST", "DELETE"]),
        ]
    )
    with serve(app) as url:
        yield url


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-security-test-0001")


def _route(base: str) -> RouteSettings:
    return RouteSettings(base_url=base, api_key_env=KEY_ENV, currency="USD")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=15,
)
task_objects = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=140), json_values),
        "status": st.one_of(
            st.sampled_from([*sorted(KNOWN_STATUSES), "paused", "RUNNING", ""]), json_values
        ),
        "error": st.one_of(
            st.fixed_dictionaries({"code": json_values, "message": json_values}), json_values
        ),
        "content": st.one_of(st.fixed_dictionaries({"video_url": json_values}), json_values),
        "usage": st.one_of(st.fixed_dictionaries({"completion_tokens": json_values}), json_values),
        "created_at": json_values,
        "updated_at": st.one_of(st.integers(), json_values),
        "seed": json_values,
        "duration": json_values,
    },
)
error_bodies = st.fixed_dictionaries(
    {"error": st.fixed_dictionaries({}, optional={"code": json_values, "message": json_values})}
)
bodies = st.one_of(
    st.binary(max_size=400),
    task_objects.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    error_bodies.map(lambda d: json.dumps(d).encode()),
    st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
)
statuses = st.sampled_from([200, 200, 200, 201, 400, 401, 403, 404, 429, 500, 502, 503])
retry_afters = st.one_of(
    st.none(),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"]),
    st.integers(-10, 10**9).map(str),
)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HUGE_MESSAGE = json.dumps({"error": {"code": "C" * 5000, "message": "m" * 1_000_000}}).encode()
HUGE_TASK = json.dumps({"id": "cgt-1", "status": "running", "pad": "x" * 3_000_000}).encode()


@FUZZ
@given(status=statuses, body=bodies, retry_after=retry_afters)
@example(status=400, body=HUGE_MESSAGE, retry_after=None)
@example(status=200, body=HUGE_TASK, retry_after=None)
@example(
    status=200, body=json.dumps({"id": "cgt-1", "status": "exploded"}).encode(), retry_after=None
)
@example(status=429, body=b"{}", retry_after="inf")
async def test_any_get_answer_is_a_task_or_a_classified_error(
    provider_url: str, http: httpx.AsyncClient, status: int, body: bytes, retry_after: str | None
) -> None:
    Answer.status, Answer.body, Answer.retry_after = status, body, retry_after
    client = ProviderClient(http)
    try:
        task = await client.get(_route(provider_url + "/api/v3"), "fake", "cgt-1")
    except (ProviderBadResponse, ProviderHTTPError, ProviderAmbiguous) as exc:
        assert 0 < len(str(exc)) <= MAX_MESSAGE
        if isinstance(exc, ProviderHTTPError):
            assert len(exc.code) <= 200 and len(exc.message) <= MAX_MESSAGE
            # What the activity does with it: the retry hint must fit a timedelta.
            to_application_error(exc, "get")
        return
    assert status < 300 and task.status in KNOWN_STATUSES and task.id


@FUZZ
@given(status=statuses, body=bodies)
@example(status=200, body=b'{"id": 12345}')
@example(status=200, body=b'{"id": ""}')
@example(status=200, body=HUGE_TASK)
async def test_any_create_answer_is_a_task_id_or_a_classified_error(
    provider_url: str, http: httpx.AsyncClient, status: int, body: bytes
) -> None:
    Answer.status, Answer.body, Answer.retry_after = status, body, None
    client = ProviderClient(http)
    try:
        task_id = await client.create(_route(provider_url + "/api/v3"), "fake", {"model": "m"})
    except (ProviderBadResponse, ProviderHTTPError, ProviderAmbiguous) as exc:
        assert 0 < len(str(exc)) <= MAX_MESSAGE
        return
    assert status < 300 and isinstance(task_id, str) and task_id


async def test_an_endless_body_is_cut_at_the_limit(
    provider_url: str, http: httpx.AsyncClient
) -> None:
    """A body that never ends is read to the limit and refused, not buffered forever."""
    client = ProviderClient(http, max_body_bytes=256 * 1024)
    with pytest.raises(ProviderBadResponse) as info:
        await asyncio.wait_for(client.get(_route(provider_url + "/endless"), "fake", "t"), 20)
    assert "larger than 262,144 bytes" in str(info.value)


async def test_default_limit_refuses_several_megabytes(
    provider_url: str, http: httpx.AsyncClient
) -> None:
    Answer.status, Answer.body, Answer.retry_after = 200, HUGE_TASK, None
    assert len(HUGE_TASK) > MAX_BODY_BYTES
    with pytest.raises(ProviderBadResponse, match="larger than"):
        await ProviderClient(http).get(_route(provider_url + "/api/v3"), "fake", "cgt-1")


async def test_unknown_status_is_quoted_in_the_error(
    provider_url: str, http: httpx.AsyncClient
) -> None:
    Answer.status, Answer.body, Answer.retry_after = (
        200,
        json.dumps({"id": "cgt-1", "status": "paused"}).encode(),
        None,
    )
    with pytest.raises(ProviderBadResponse) as info:
        await ProviderClient(http).get(_route(provider_url + "/api/v3"), "fake", "cgt-1")
    assert "status = 'paused'" in str(info.value)


async def test_a_task_id_cannot_steer_the_request_path(
    provider_url: str, http: httpx.AsyncClient
) -> None:
    """A task ID is one opaque path segment: dot segments, slashes, queries and fragments in an
    ID (one announced by a forged callback, say) never reach another path with our key."""
    Answer.status, Answer.body, Answer.retry_after = 200, b"{}", None
    Answer.paths.clear()
    client = ProviderClient(http)
    route = _route(provider_url + "/api/v3")
    for task_id in ("../../../admin?x=1#f", "a/b", "%2e%2e", "cgt-1?page_size=500"):
        with contextlib.suppress(ProviderBadResponse, ProviderHTTPError):
            await client.get(route, "fake", task_id)
        with contextlib.suppress(ProviderBadResponse, ProviderHTTPError):
            await client.delete(route, "fake", task_id)
    assert len(Answer.paths) == 8, Answer.paths
    for path in Answer.paths:
        assert path.startswith("/api/v3/contents/generations/tasks/"), path
        assert "/" not in path.removeprefix("/api/v3/contents/generations/tasks/"), path
        assert "?" not in path and "#" not in path
